/**
 * Durations as written in the config and on the command line: one or more `<integer><unit>`
 * parts, largest unit first, each unit at most once: "500ms", "30s", "15m", "2h", "7d", "1h30m".
 * A bare number, a sign, a fraction, spaces or an unknown unit are errors: a config that says
 * `delay = "5"` is more likely a mistake than a wish for 5 ms.
 */

const UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

const PART = /(\d+)(ms|s|m|h|d)/y;

export const DURATION_HINT = '(use e.g. "500ms", "30s", "15m", "7d")';

/** Milliseconds in `text`; throws a one-line `Error` naming the text when it is not a duration. */
export function parseDuration(text: string): number {
  const fail = (): never => {
    throw new Error(`${JSON.stringify(text)} is not a duration ${DURATION_HINT}`);
  };
  if (typeof text !== 'string' || text === '') fail();
  let total = 0;
  let last = -1; // index in UNITS of the previous part: units must strictly descend
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const m = PART.exec(text) ?? fail();
    const unit = UNITS.findIndex(([u]) => u === m[2]);
    if (unit <= last) fail();
    last = unit;
    total += Number(m[1]) * UNITS[unit]![1];
  }
  if (!Number.isSafeInteger(total)) fail();
  return total;
}

/**
 * The canonical text of `ms` milliseconds (rounded to a whole ms): "1h30m", "500ms", "0s".
 * `parseDuration(formatDuration(n)) === n` for every safe non-negative integer. A negative
 * value (a bug somewhere, but worth logging) is written with a leading "-".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let rest = Math.round(Math.abs(ms));
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return (ms < 0 && out ? '-' : '') + (out || '0s');
}
