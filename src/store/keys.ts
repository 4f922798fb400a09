/**
 * Key rules shared by every backend, so a key that works on file:// also works on S3 and
 * the other way round. Keys come from the sync layer, which builds them from remote input
 * among other things: a bad key is a bug or an attack, so it throws instead of being fixed up.
 */

/** The file backend's temp directory name; reserved on every backend so listings agree. */
export const TEMP_DIR = '.fedsync-tmp';

/** Throws unless `key` is a relative `/`-separated path with no empty, `.` or `..` segment. */
export function checkKey(key: string): void {
  const why = keyProblem(key, false);
  if (why) throw new Error(`store: invalid key ${JSON.stringify(key)}: ${why}`);
}

/** Like checkKey, but a listing prefix may be empty, end with `/` or stop mid-segment. */
export function checkPrefix(prefix: string): void {
  const why = keyProblem(prefix, true);
  if (why) throw new Error(`store: invalid list prefix ${JSON.stringify(prefix)}: ${why}`);
}

function keyProblem(key: string, isPrefix: boolean): string | null {
  if (typeof key !== 'string') return 'not a string';
  if (key === '') return isPrefix ? null : 'empty';
  if (key.includes('\0')) return 'contains NUL';
  if (key.includes('\\')) return 'contains a backslash';
  if (key.startsWith('/')) return 'starts with /';
  const segs = key.split('/');
  // A prefix's last segment may be partial ("heads/ab") or empty ("heads/").
  const whole = isPrefix ? segs.slice(0, -1) : segs;
  for (const s of whole) {
    if (s === '') return 'has an empty segment';
    if (s === '.' || s === '..') return `has a "${s}" segment`;
    if (s === TEMP_DIR) return `uses the reserved name ${TEMP_DIR}`;
  }
  if (Buffer.byteLength(key) > 1024) return 'longer than 1024 bytes';
  return null;
}

/** Orders keys by their UTF-8 bytes, as S3 listings do (JS `<` compares UTF-16 units). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
