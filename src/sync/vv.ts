import type { VersionVector } from '../model/entry.js';

export type { VersionVector } from '../model/entry.js';

export type Order = 'equal' | 'before' | 'after' | 'concurrent';

/** How `a` relates to `b`: 'before' means b has seen everything a has, and more. */
export function compareVV(a: VersionVector, b: VersionVector): Order {
  let aAhead = false;
  let bAhead = false;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k] ?? 0;
    const y = b[k] ?? 0;
    if (x > y) aAhead = true;
    else if (y > x) bAhead = true;
  }
  if (aAhead && bAhead) return 'concurrent';
  if (aAhead) return 'after';
  if (bAhead) return 'before';
  return 'equal';
}

export function mergeVV(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return sortVV(out);
}

/** The vector of a new local change made on top of `base`. */
export function bumpVV(base: VersionVector, node: string): VersionVector {
  return sortVV({ ...base, [node]: (base[node] ?? 0) + 1 });
}

/** Keys in a fixed order, so that equal vectors serialise to equal bytes. */
export function sortVV(v: VersionVector): VersionVector {
  const out: VersionVector = {};
  for (const k of Object.keys(v).sort()) out[k] = v[k]!;
  return out;
}
