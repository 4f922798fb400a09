import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Clock, formatHlc, isHlc, parseHlc, ZERO_HLC } from './hlc.js';

const DAY = 24 * 3600 * 1000;

describe('HLC format', () => {
  it('is fixed width, so string order is time order', () => {
    assert.equal(formatHlc(1763700000000, 3), '1763700000000-000003');
    assert.deepEqual(parseHlc('1763700000000-000003'), { wall: 1763700000000, counter: 3 });
    assert.ok(formatHlc(999, 999999) < formatHlc(1000, 0));
    assert.equal(ZERO_HLC, '0000000000000-000000');
    for (const bad of ['', '1763700000000', '1763700000000-3', '1763700000000-0000003', 'x763700000000-000003', 42, null]) {
      assert.equal(isHlc(bad), false, String(bad));
    }
    assert.throws(() => parseHlc('nope'), /invalid HLC/);
  });
});

describe('Clock', () => {
  it('ticks strictly upward even when the wall clock stands still or goes back', () => {
    let now = 1_000_000;
    const c = new Clock(ZERO_HLC, () => now);
    const a = c.tick();
    const b = c.tick();
    now -= 5000;
    const d = c.tick();
    now += 10_000;
    const e = c.tick();
    assert.deepEqual([a, b, d, e], [formatHlc(1_000_000, 0), formatHlc(1_000_000, 1), formatHlc(1_000_000, 2), formatHlc(1_005_000, 0)]);
    assert.equal(c.current, e);
  });

  it('starts from a saved HLC', () => {
    const c = new Clock(formatHlc(5000, 7), () => 10);
    assert.equal(c.tick(), formatHlc(5000, 8));
  });

  it('observe adopts a later remote HLC, so the next tick is after it', () => {
    const now = 1_000_000;
    const c = new Clock(ZERO_HLC, () => now);
    c.tick();
    const remote = formatHlc(now + 60_000, 4);
    c.observe(remote);
    assert.equal(c.current, remote);
    assert.ok(c.tick() > remote);
    c.observe(formatHlc(5, 0));
    assert.ok(c.current > remote, 'an older remote HLC changes nothing');
  });

  it('does not adopt an HLC implausibly far in the future', () => {
    const now = 1_000_000_000;
    const c = new Clock(ZERO_HLC, () => now);
    const mine = c.tick();
    c.observe(formatHlc(now + DAY + 1, 0));
    assert.equal(c.current, mine);
    assert.equal(c.tick(), formatHlc(now, 1));
    c.observe(formatHlc(now + DAY - 1, 0));
    assert.equal(c.current, formatHlc(now + DAY - 1, 0), 'just within the limit is adopted');
  });

  it('never produces an invalid HLC when the counter runs out within one millisecond', () => {
    const c = new Clock(formatHlc(5000, 999_998), () => 10);
    const a = c.tick();
    const b = c.tick();
    assert.ok(isHlc(a) && isHlc(b), `${a} ${b}`);
    assert.ok(a < b);
    assert.ok(isHlc(c.tick()));
  });

  it('property: every tick is valid and greater than everything seen before', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ dt: fc.integer({ min: -5000, max: 5000 }) }), fc.record({ remote: fc.integer({ min: -DAY, max: 2 * DAY }), ctr: fc.integer({ min: 0, max: 999_999 }) })), { maxLength: 60 }),
        (ops) => {
          let now = 10 * DAY;
          const c = new Clock(ZERO_HLC, () => now);
          let max = ZERO_HLC;
          for (const op of ops) {
            if ('dt' in op) {
              now += op.dt;
              const t = c.tick();
              assert.ok(isHlc(t), t);
              assert.ok(t > max, `${t} > ${max}`);
              max = t;
            } else {
              const r = formatHlc(now + op.remote, op.ctr);
              c.observe(r);
              if (op.remote <= DAY && r > max) max = r;
              assert.ok(c.current >= max);
            }
          }
        },
      ),
    );
  });
});
