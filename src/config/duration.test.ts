import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  const ok: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['0s', 0],
    ['0ms', 0],
    ['90s', 90_000],
  ];
  for (const [text, ms] of ok) it(`reads ${text}`, () => assert.equal(parseDuration(text), ms));

  const bad = ['', '5', '-5s', '+5s', '5x', '1.5h', '1h 30m', ' 5s', '5s ', '30m1h', '1h1h', '5S', 'ms', 's5', '5 s', '1w', '99999999999999999999d'];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDuration(text), (e: Error) => {
        assert.equal(e.message, `${JSON.stringify(text)} is not a duration (use e.g. "500ms", "30s", "15m", "7d")`);
        return true;
      });
    });
  }
});

describe('formatDuration', () => {
  it('writes the canonical form', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1500), '1s500ms');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(604_800_000), '7d');
    assert.equal(formatDuration(1234.4), '1s234ms');
    assert.equal(formatDuration(-30_000), '-30s');
  });

  it('round-trips every non-negative safe integer', () => {
    fc.assert(fc.property(fc.maxSafeNat(), (n) => parseDuration(formatDuration(n)) === n));
  });

  it('gives the canonical form of any valid duration text', () => {
    const units = ['d', 'h', 'm', 's', 'ms'];
    const text = fc
      .subarray(units, { minLength: 1 })
      .chain((us) => fc.tuple(...us.map((u) => fc.nat({ max: 100_000 }).map((n) => `${n}${u}`))))
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (t) => {
        const ms = parseDuration(t);
        const canon = formatDuration(ms);
        return parseDuration(canon) === ms && formatDuration(parseDuration(canon)) === canon;
      }),
    );
  });
});
