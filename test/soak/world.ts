// The seeded operations of a soak trial on the nodes' disks, and the bookkeeping the oracle
// needs: every content written (each one unique: it starts with the op number, node and path),
// and the contents the test itself destroyed where it could see them (overwritten, appended
// to or deleted on a node whose disk held them). Anything else written must survive.
//
// A node with a skewed clock stamps what it writes with its own time: the test sets the mtime
// of every file it writes there to real time plus that node's offset, as that machine's kernel
// would, so "modified within settle" means the same on every node.
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { listRoot, pickDirMove, sha256, type FedNode, type Rng } from '../e2e/harness.js';

const DIRS = ['docs', 'img', 'café', 'with space', 'a', '日本'];
const FILES = ['index.html', 'notes.txt', 'naïve.md', 'a', 'b.bin', 'data.json', 'x y.css'];
const MODES = [0o644, 0o600, 0o755, 0o640];

export interface Written {
  op: number;
  node: string;
  path: string;
  size: number;
}

export class World {
  readonly log: string[] = [];
  readonly written = new Map<string, Written>();
  readonly destroyed = new Map<string, string>();
  op = 0;
  private readonly files: string[];
  private readonly dirs: string[];

  constructor(
    readonly rng: Rng,
    /** Clock offset of each node, ms. */
    readonly skew: Map<string, number>,
    /** More names to create files and directories under (names some nodes exclude). */
    more: { files?: string[]; dirs?: string[] } = {},
  ) {
    this.files = [...FILES, ...(more.files ?? [])];
    this.dirs = [...DIRS, ...(more.dirs ?? [])];
  }

  note(line: string): void {
    this.log.push(`${String(this.op).padStart(3)} ${line}`);
  }

  private stamp(n: FedNode, path: string): void {
    const t = (Date.now() + (this.skew.get(n.name) ?? 0)) / 1000;
    utimesSync(n.abs(path), t, t);
  }

  private content(n: FedNode, path: string): Buffer {
    const head = Buffer.from(`op ${this.op} on ${n.name} at ${path}\n`);
    return Buffer.concat([head, this.rng.bytes(this.rng.chance(0.3) ? this.rng.int(0, 64) : this.rng.int(64, 4000))]);
  }

  private record(n: FedNode, path: string, body: Buffer, why: string): void {
    const h = sha256(body);
    this.written.set(h, { op: this.op, node: n.name, path, size: body.length });
    this.note(`${n.name}: ${why} ${JSON.stringify(path)} (${body.length} B, ${h.slice(0, 10)})`);
  }

  private destroy(n: FedNode, path: string, why: string): void {
    this.destroyed.set(sha256(readFileSync(n.abs(path))), `op ${this.op} ${n.name} ${why} ${path}`);
  }

  /** Writes a new content at `path` on `n` (parents made as needed). */
  write(n: FedNode, path: string, why: string): void {
    mkdirSync(dirname(n.abs(path)), { recursive: true });
    if (existsSync(n.abs(path))) this.destroy(n, path, why);
    const body = this.content(n, path);
    writeFileSync(n.abs(path), body);
    this.stamp(n, path);
    this.record(n, path, body, why);
  }

  private freeName(n: FedNode, dir: string, pool: string[]): string {
    for (let tries = 0; tries < 10; tries++) {
      const p = `${dir ? `${dir}/` : ''}${this.rng.pick(pool)}`;
      if (!existsSync(n.abs(p))) return p;
    }
    return `${dir ? `${dir}/` : ''}n${this.op}`;
  }

  private someDir(n: FedNode): string {
    const { dirs } = listRoot(n.root);
    return dirs.length === 0 || this.rng.chance(0.35) ? '' : this.rng.pick(dirs);
  }

  private someFile(n: FedNode): string | null {
    const { files } = listRoot(n.root);
    return files.length ? this.rng.pick(files) : null;
  }

  /** Deletes the file at `path` on `n`. */
  removeAt(n: FedNode, path: string, why: string): void {
    this.destroy(n, path, why);
    unlinkSync(n.abs(path));
    this.note(`${n.name}: ${why} ${JSON.stringify(path)}`);
  }

  /** A file on `n` that `keep(path)` accepts, or a free name for a new one. */
  fileFor(n: FedNode, keep: (path: string) => boolean): string {
    const files = listRoot(n.root).files.filter(keep);
    if (files.length && this.rng.chance(0.8)) return this.rng.pick(files);
    for (let tries = 0; tries < 10; tries++) {
      const p = this.freeName(n, this.someDir(n), this.files);
      if (keep(p)) return p;
    }
    return `n${this.op}.txt`;
  }

  // --- operations; false when there is nothing to apply them to ---

  create(n: FedNode): boolean {
    this.write(n, this.freeName(n, this.someDir(n), this.files), 'create');
    return true;
  }

  modify(n: FedNode): boolean {
    const p = this.someFile(n);
    if (p) this.write(n, p, 'modify');
    return p !== null;
  }

  append(n: FedNode): boolean {
    const p = this.someFile(n);
    if (!p) return false;
    this.destroy(n, p, 'append');
    appendFileSync(n.abs(p), `appended at op ${this.op} on ${n.name}\n`);
    this.stamp(n, p);
    this.record(n, p, readFileSync(n.abs(p)), 'append to');
    return true;
  }

  remove(n: FedNode): boolean {
    const p = this.someFile(n);
    if (!p) return false;
    this.destroy(n, p, 'delete');
    unlinkSync(n.abs(p));
    this.note(`${n.name}: delete ${JSON.stringify(p)}`);
    return true;
  }

  renameFile(n: FedNode): boolean {
    const from = this.someFile(n);
    if (!from) return false;
    const to = this.freeName(n, this.someDir(n), this.files);
    renameSync(n.abs(from), n.abs(to));
    this.note(`${n.name}: rename ${JSON.stringify(from)} -> ${JSON.stringify(to)}`);
    return true;
  }

  renameDir(n: FedNode): boolean {
    const move = pickDirMove(this.rng, listRoot(n.root).dirs);
    if (!move) return false;
    const to = this.freeName(n, move.parent, this.dirs);
    renameSync(n.abs(move.from), n.abs(to));
    this.note(`${n.name}: rename dir ${JSON.stringify(move.from)} -> ${JSON.stringify(to)}`);
    return true;
  }

  mkdir(n: FedNode): boolean {
    const p = this.freeName(n, this.someDir(n), this.dirs);
    mkdirSync(n.abs(p));
    this.note(`${n.name}: mkdir ${JSON.stringify(p)}`);
    return true;
  }

  rmdir(n: FedNode): boolean {
    const empty = listRoot(n.root).dirs.filter((d) => readdirSync(n.abs(d)).length === 0);
    if (empty.length === 0) return false;
    const p = this.rng.pick(empty);
    rmdirSync(n.abs(p));
    this.note(`${n.name}: rmdir ${JSON.stringify(p)}`);
    return true;
  }

  chmod(n: FedNode): boolean {
    const p = this.someFile(n);
    if (!p) return false;
    const mode = this.rng.pick(MODES);
    chmodSync(n.abs(p), mode);
    this.note(`${n.name}: chmod ${mode.toString(8)} ${JSON.stringify(p)}`);
    return true;
  }

  /** Two or three nodes edit one path they all have before any of them syncs. */
  concurrentEdit(nodes: FedNode[]): boolean {
    if (nodes.length < 2) return false;
    const editors = this.rng.shuffle(nodes).slice(0, this.rng.int(2, Math.min(3, nodes.length)));
    const common = editors
      .map((n) => new Set(listRoot(n.root).files))
      .reduce((a, b) => new Set([...a].filter((p) => b.has(p))));
    if (common.size === 0) return false;
    const p = this.rng.pick([...common].sort());
    for (const n of editors) this.write(n, p, 'concurrent edit');
    return true;
  }
}
