import type { Hlc } from '../model/entry.js';

/**
 * Hybrid logical clock: wall milliseconds plus a counter, as one fixed-width string so that
 * string order is time order ("1763700000000-000003"). It is raised on every local event and
 * on every received record, so causally later records always carry a larger HLC even when
 * the nodes' wall clocks disagree.
 */
export type { Hlc };

const HLC = /^(\d{13})-(\d{6})$/;
/** A received HLC further ahead than this is still used for ordering but not adopted. */
const MAX_ADOPT_AHEAD_MS = 24 * 3600 * 1000;
const MAX_COUNTER = 999_999;

export function isHlc(s: unknown): s is Hlc {
  return typeof s === 'string' && HLC.test(s);
}

export function formatHlc(wall: number, counter: number): Hlc {
  return `${String(wall).padStart(13, '0')}-${String(counter).padStart(6, '0')}`;
}

export function parseHlc(h: Hlc): { wall: number; counter: number } {
  const m = HLC.exec(h);
  if (!m) throw new Error(`invalid HLC ${JSON.stringify(h)}`);
  return { wall: Number(m[1]), counter: Number(m[2]) };
}

export const ZERO_HLC: Hlc = formatHlc(0, 0);

export class Clock {
  constructor(
    private last: Hlc = ZERO_HLC,
    private readonly now: () => number = Date.now,
  ) {}

  get current(): Hlc {
    return this.last;
  }

  /** A new timestamp for a local event, greater than every one seen so far. */
  tick(): Hlc {
    const { wall, counter } = parseHlc(this.last);
    const now = this.now();
    if (now > wall) this.last = formatHlc(now, 0);
    // The counter has six digits: past them (a clock held back by an adopted remote HLC and a
    // burst of local events), move to the next millisecond rather than emit an invalid HLC.
    else this.last = counter < MAX_COUNTER ? formatHlc(wall, counter + 1) : formatHlc(wall + 1, 0);
    return this.last;
  }

  /** Takes a received timestamp into account, unless it is implausibly far in the future. */
  observe(remote: Hlc): void {
    if (remote <= this.last) return;
    if (parseHlc(remote).wall > this.now() + MAX_ADOPT_AHEAD_MS) return;
    this.last = remote;
  }
}
