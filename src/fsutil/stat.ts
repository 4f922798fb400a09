import type { BigIntStats } from 'node:fs';

/**
 * What change detection compares: size, mtime and ctime to the nanosecond, and inode. Any
 * write, rename-over, chmod or touch changes at least one of them.
 */
export function statKey(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`;
}

/**
 * Modification time in whole milliseconds. A time before 1970 (old archives) becomes 0:
 * records refuse negative times and utimes cannot set them, so the file would never travel.
 */
export function mtimeMs(st: BigIntStats): number {
  return st.mtimeNs < 0n ? 0 : Number(st.mtimeNs / 1_000_000n);
}

/** Permission bits only: set-id and sticky bits never travel between nodes. */
export function permBits(st: BigIntStats): number {
  return Number(st.mode) & 0o777;
}

/**
 * Seconds for utimes from milliseconds. ms / 1000 is not exact in binary and can land a few
 * hundred ns below the millisecond, which would read back one ms early; half a microsecond
 * on top keeps every node's mtime on the same millisecond.
 */
export function utimesSeconds(ms: number): number {
  return (ms + 0.0005) / 1000;
}
