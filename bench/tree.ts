// The benchmark's data: a deterministic WordPress-uploads-like tree, a big file, and the
// changes the "one file changed" and "1% churn" cases make. Everything is a function of
// (files, seed): the layout and sizes come from a seeded PRNG, the bytes from an AES-256-CTR
// keystream (fixed key derived from the seed, the file's index as the IV), so two machines
// generate byte-identical trees, and a generated tree is cached on disk between runs.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Mean file size the issue asks for: 100,000 files ≈ 833 MB. */
export const MEAN_SIZE = 8_330;
/** Spread of the lognormal size distribution (ln-space standard deviation). */
const SIGMA = 1.4;
/** Largest file in the tree. */
const MAX_SIZE = 20 * 1024 * 1024;
/** Files per directory, drawn uniformly from this range. */
const PER_DIR: [number, number] = [100, 150];
/** Months per site: 2015-01 … 2024-12. */
const MONTHS = 120;
const FIRST_YEAR = 2015;

/** A small, fast, seedable PRNG (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number | string) {
    const h = createHash('sha256').update(String(seed)).digest();
    this.s = h.readUInt32LE(0) || 1;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

/** Lognormal with mean MEAN_SIZE: mu = ln(mean) - sigma²/2. */
function lognormalSize(rng: Rng): number {
  const mu = Math.log(MEAN_SIZE) - (SIGMA * SIGMA) / 2;
  return Math.min(MAX_SIZE, Math.max(1, Math.round(Math.exp(mu + SIGMA * rng.normal()))));
}

const WORDS = ['img', 'photo', 'banner', 'logo', 'screenshot', 'header', 'product', 'team', 'post', 'gallery', 'hero', 'thumb', 'slide', 'event', 'cover'];
const EXTS: [string, number][] = [['jpg', 0.58], ['png', 0.2], ['webp', 0.1], ['pdf', 0.05], ['gif', 0.04], ['svg', 0.03]];
const VARIANTS = ['', '', '-150x150', '-300x200', '-768x512', '-1024x683'];

function pickExt(rng: Rng): string {
  let x = rng.next();
  for (const [ext, p] of EXTS) {
    if ((x -= p) < 0) return ext;
  }
  return 'jpg';
}

export interface TreeFile {
  /** The file's index: its IV, and its identity across the cases. */
  i: number;
  rel: string;
  size: number;
  /** Seconds since the epoch: a time inside the file's year/month. */
  mtime: number;
}

export interface TreeSpec {
  files: number;
  seed: number;
  list: TreeFile[];
  dirs: string[];
  bytes: number;
}

/** The directory of the d-th group: uploads/<year>/<month>, then uploads/sites/<n>/<year>/<month> (multisite). */
function dirOf(d: number): { rel: string; year: number; month: number } {
  const site = Math.floor(d / MONTHS);
  const m = d % MONTHS;
  const year = FIRST_YEAR + Math.floor(m / 12);
  const month = (m % 12) + 1;
  const mm = String(month).padStart(2, '0');
  return { rel: site === 0 ? `uploads/${year}/${mm}` : `uploads/sites/${site + 1}/${year}/${mm}`, year, month };
}

/** The layout of the tree (no I/O): paths, sizes and mtimes, all from the seed. */
export function planTree(files: number, seed: number): TreeSpec {
  const rng = new Rng(`tree:${seed}`);
  const list: TreeFile[] = [];
  const dirs: string[] = [];
  let bytes = 0;
  for (let d = 0, i = 0; i < files; d++) {
    const { rel, year, month } = dirOf(d);
    dirs.push(rel);
    const n = Math.min(files - i, rng.int(PER_DIR[0], PER_DIR[1]));
    for (let k = 0; k < n; k++, i++) {
      const ext = pickExt(rng);
      const variant = ext === 'pdf' || ext === 'svg' ? '' : rng.pick(VARIANTS);
      const size = lognormalSize(rng);
      const mtime = Date.UTC(year, month - 1, 1 + rng.int(0, 27), rng.int(0, 23), rng.int(0, 59), rng.int(0, 59)) / 1000;
      list.push({ i, rel: `${rel}/${rng.pick(WORDS)}-${i}${variant}.${ext}`, size, mtime });
      bytes += size;
    }
  }
  return { files, seed, list, dirs, bytes };
}

function keyOf(seed: number): Buffer {
  return createHash('sha256').update(`fedsync-bench-content:${seed}`).digest();
}

function ivOf(n: bigint): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(n >> 64n, 0);
  iv.writeBigUInt64BE(n & 0xffffffffffffffffn, 8);
  return iv;
}

const ZEROS = Buffer.alloc(1024 * 1024);

/** `size` deterministic pseudo-random bytes for stream `n` (AES-256-CTR keystream). */
export function contentOf(seed: number, n: bigint, size: number): Buffer {
  const c = createCipheriv('aes-256-ctr', keyOf(seed), ivOf(n));
  if (size <= ZEROS.length) return c.update(ZEROS.subarray(0, size));
  const parts: Buffer[] = [];
  for (let left = size; left > 0; left -= ZEROS.length) parts.push(c.update(ZEROS.subarray(0, Math.min(left, ZEROS.length))));
  return Buffer.concat(parts);
}

/** IV spaces: tree files use their index; rewritten versions and new files live above 2^64. */
const GENERATION = 1n << 64n;
const BIG_FILE_IV = 1n << 100n;

/**
 * The tree for (files, seed) under `workDir`, generated once and then reused: the directory
 * is complete when its marker file (beside it) exists.
 */
export function ensureTree(workDir: string, files: number, seed: number, log: (s: string) => void): { dir: string; spec: TreeSpec } {
  const spec = planTree(files, seed);
  const dir = join(workDir, `tree-n${files}-s${seed}`);
  const marker = `${dir}.json`;
  if (existsSync(marker)) {
    const m = JSON.parse(readFileSync(marker, 'utf8')) as { bytes: number; files: number };
    if (m.bytes === spec.bytes && m.files === files) return { dir, spec };
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(marker, { force: true });
  const t0 = performance.now();
  log(`generating ${files} files (${(spec.bytes / 1e6).toFixed(0)} MB) in ${dir} ...`);
  for (const d of spec.dirs) mkdirSync(join(dir, d), { recursive: true });
  for (const f of spec.list) {
    const abs = join(dir, f.rel);
    writeFileSync(abs, contentOf(seed, BigInt(f.i), f.size));
    utimesSync(abs, f.mtime, f.mtime);
  }
  writeFileSync(marker, JSON.stringify({ files, seed, bytes: spec.bytes, dirs: spec.dirs.length, generatedIn: Math.round(performance.now() - t0) }));
  log(`generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { dir, spec };
}

/** A `mb` MiB file of deterministic bytes, cached beside the trees. */
export function ensureBigFile(workDir: string, mb: number, seed: number, log: (s: string) => void): string {
  const file = join(workDir, `big-${mb}m-s${seed}.bin`);
  if (existsSync(`${file}.ok`)) return file;
  log(`generating a ${mb} MiB file ...`);
  const c = createCipheriv('aes-256-ctr', keyOf(seed), ivOf(BIG_FILE_IV));
  const fd = openSync(`${file}.part`, 'w');
  try {
    for (let i = 0; i < mb; i++) writeSync(fd, c.update(ZEROS));
  } finally {
    closeSync(fd);
  }
  renameSync(`${file}.part`, file);
  utimesSync(file, 1_700_000_000, 1_700_000_000);
  writeFileSync(`${file}.ok`, '');
  return file;
}

/** One change to a tree; applied identically to rclone's source tree and fedsync's node A. */
export type Op = { op: 'write'; rel: string; size: number; iv: bigint } | { op: 'delete'; rel: string };

/** Rewrites file `k` (new bytes, a slightly different size): the "one file changed" case. */
export function oneChange(spec: TreeSpec, generation: number): Op[] {
  const f = spec.list[Math.floor(spec.list.length / 2)]!;
  return [{ op: 'write', rel: f.rel, size: f.size + 17, iv: GENERATION * BigInt(generation) + BigInt(f.i) }];
}

/**
 * 1% of the files churned: half of them rewritten, a quarter deleted, and as many new files
 * added beside existing ones (WordPress uploads: mostly edits and new uploads).
 */
export function churn(spec: TreeSpec, fraction: number, generation: number): Op[] {
  const rng = new Rng(`churn:${spec.seed}:${generation}`);
  const n = Math.max(4, Math.round(spec.files * fraction));
  const picked = new Set<number>();
  // Skip the file oneChange touches, so the cases stay independent.
  const skip = Math.floor(spec.list.length / 2);
  while (picked.size < Math.min(n - Math.floor(n / 4), spec.list.length - 1)) {
    const k = rng.int(0, spec.list.length - 1);
    if (k !== skip) picked.add(k);
  }
  const ops: Op[] = [];
  const idx = [...picked];
  const modify = idx.slice(0, Math.ceil(n / 2));
  const remove = idx.slice(Math.ceil(n / 2));
  for (const k of modify) {
    const f = spec.list[k]!;
    ops.push({ op: 'write', rel: f.rel, size: lognormalSize(rng), iv: GENERATION * BigInt(generation) + BigInt(f.i) });
  }
  for (const k of remove) ops.push({ op: 'delete', rel: spec.list[k]!.rel });
  const added = n - modify.length - remove.length;
  for (let a = 0; a < added; a++) {
    const near = spec.list[rng.int(0, spec.list.length - 1)]!;
    const i = spec.files + a;
    ops.push({ op: 'write', rel: `${dirname(near.rel)}/upload-g${generation}-${i}.jpg`, size: lognormalSize(rng), iv: GENERATION * BigInt(generation) + BigInt(i) });
  }
  return ops;
}

/** Applies the ops under `root` (writes in place, like an application does). */
export function applyOps(root: string, seed: number, ops: Op[]): void {
  for (const o of ops) {
    const abs = join(root, o.rel);
    if (o.op === 'delete') unlinkSync(abs);
    else writeFileSync(abs, contentOf(seed, o.iv, o.size));
  }
}
