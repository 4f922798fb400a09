// The situations a soak trial makes besides operations, faults, kills and skew (the plan comes
// from kinds.ts), as operators meet them:
//
// - exclude: some nodes exclude `secret.php` and/or `private/`, the housekeeping leader (the
//   smallest id) always among them; a node that excludes nothing writes both early on;
// - join: one node is not initialised with the others, and joins later (init, run); in exclude
//   trials the leader housekeeps just before, so in pruning trials the joiner starts from the
//   snapshot an excluding leader wrote;
// - blackout: the next blob or segment uploaded after a point reads 404 (GET and HEAD) for a
//   number of requests and a time, as on a lagging replica, then reads again;
// - rollback: a node's root and state dir are copied between two commands; later, after a run
//   of its that published what it wrote since, both are put back (a VM snapshot reverted);
// - parallel init: several nodes run `init` at once on the empty store, in half of those
//   trials with a passphrase (every node encrypted);
// - clone: a node's root and state dir are copied to a new node with another `node` name, on
//   this same machine; both keep running;
// - publish edit: a node's run records a change, and at its first upload the file is edited
//   again (or deleted) while every upload of that run is refused (403); later runs succeed.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ignore from 'ignore';
import { FedNode, sleep, snapshotTree, type CommandResult, type Federation } from '../e2e/harness.js';
import type { Fault, FaultHook, ProxyRequest } from '../support/proxy.js';
import { noSituations, type Blackout, type Plan, type SituationCounts } from './kinds.js';
import type { World } from './world.js';

/** `rel` (dirs with isDir) is kept out by this node's exclude. */
export type Excluded = (rel: string, isDir: boolean) => boolean;

export interface TrialHooks {
  /** Runs a command as the trial does (logged, checked), with the given fault hook. */
  command(n: FedNode, args: string[], hook?: FaultHook): Promise<CommandResult>;
  /** The trial's usual fault hook (blackouts, then random faults). */
  faulty: FaultHook;
  online(): FedNode[];
  violations: string[];
}

const PASSPHRASE = 'correct horse battery staple, soak edition';

interface ActiveBlackout extends Blackout {
  key?: string;
  since?: number;
  served: number;
}

export class Situations {
  readonly counts: SituationCounts = noSituations();
  /** Nodes not initialised yet (the late joiner). */
  readonly pending = new Set<FedNode>();
  private readonly patterns = new Map<FedNode, string[]>();
  private readonly matchers = new Map<FedNode, Excluded>();
  private readonly blackouts: ActiveBlackout[] = [];
  private rollbackCopy: string | null = null;
  /** The initial nodes, in name order (plan indexes refer to these). */
  private initial: FedNode[] = [];

  constructor(
    readonly fed: Federation,
    readonly plan: Plan,
    readonly endpoint: string,
  ) {
    this.counts.encrypted = plan.parallelInit?.passphrase ?? false;
    if (plan.join) this.pending.add(fed.nodes[fed.nodes.length - 1]!);
    this.initial = fed.nodes.filter((n) => !this.pending.has(n));
  }

  /** Names the World should also create: those some nodes exclude. */
  static moreNames(plan: Plan): { files?: string[]; dirs?: string[] } {
    return plan.exclude ? { files: ['secret.php'], dirs: ['private'] } : {};
  }

  excluded(n: FedNode): Excluded | null {
    return this.matchers.get(n) ?? null;
  }

  /** Writes the node's config: the harness's, plus passphrase and exclude. */
  private configure(n: FedNode): void {
    n.writeConfig(this.endpoint);
    let text = readFileSync(n.config, 'utf8');
    if (this.counts.encrypted) {
      const file = join(n.dir, 'passphrase');
      writeFileSync(file, `${PASSPHRASE}\n`);
      chmodSync(file, 0o600);
      text = text.replace('force_path_style = true\n', `force_path_style = true\npassphrase_file = ${JSON.stringify(file)}\n`);
    }
    const patterns = this.patterns.get(n) ?? [];
    // The [[sync]] table is the config's last: a key appended belongs to it.
    if (patterns.length) text += `exclude = ${JSON.stringify(patterns)}\n`;
    writeFileSync(n.config, text);
    if (patterns.length) {
      const ig = ignore().add(patterns);
      this.matchers.set(n, (rel, isDir) => ig.ignores(isDir ? `${rel}/` : rel));
    } else this.matchers.delete(n);
  }

  /** `fedsync init` on one node; a failure that is one clear line is tried again once, later. */
  private async init(n: FedNode, hooks: TrialHooks, w: World): Promise<boolean> {
    const r = await n.fedsync(['init']);
    const m = /\(([a-z2-7]{26})\)/.exec(r.stdout);
    w.note(`${n.name}: init -> ${r.code === 0 ? `ok (${m?.[1] ?? 'no id printed'})` : `exit ${r.code}: ${r.stderr.trim().split('\n').pop()}`}`);
    if (r.code === 0 && m) {
      n.id = m[1]!;
      return true;
    }
    if (r.code !== 1 || /\n\s+at /.test(r.stderr)) hooks.violations.push(`${n.name}: fedsync init crashed (exit ${r.code}):\n${r.stderr.trim()}`);
    return false;
  }

  /** Before the first operation: configs, `init` (some at once), then who excludes what. */
  async setUp(hooks: TrialHooks, w: World): Promise<void> {
    for (const n of this.fed.nodes) {
      // fedsync makes the state directory itself, with the mode it wants for key material.
      if (this.counts.encrypted) rmSync(n.stateDir, { recursive: true, force: true });
      this.configure(n);
    }
    const together = (this.plan.parallelInit?.nodes ?? []).map((i) => this.initial[i]!);
    if (together.length >= 2) {
      this.counts.parallelInit = together.length;
      w.note(`parallel init of ${together.map((n) => n.name).join(', ')}${this.counts.encrypted ? ', with a passphrase' : ''}`);
    }
    const failed: FedNode[] = [];
    const results = await Promise.all(together.map((n) => this.init(n, hooks, w)));
    together.forEach((n, i) => results[i] || failed.push(n));
    for (const n of this.initial) if (!together.includes(n) && !(await this.init(n, hooks, w))) failed.push(n);
    for (const n of failed) if (!(await this.init(n, hooks, w))) throw new Error(`${n.name}: fedsync init failed twice`);

    if (this.plan.exclude) {
      // By id: rank 0 is the housekeeping leader (the smallest id among nodes that take changes).
      const ranked = [...this.initial].sort((a, b) => (a.id < b.id ? -1 : 1));
      ranked.forEach((n, rank) => {
        const p = this.plan.exclude!.patterns[rank]!;
        this.patterns.set(n, p);
        this.configure(n);
        if (p.length) this.counts.excludingNodes++;
      });
      this.counts.leaderExcludes = this.patterns.get(ranked[0]!)!.length > 0;
      w.note(`exclude: ${ranked.map((n, i) => `${n.name}${i === 0 ? ' (leader)' : ''} ${JSON.stringify(this.patterns.get(n))}`).join(', ')}`);
    }
  }

  /** The fault hook layer of blackouts: 404 for the blacked-out objects, undefined otherwise. */
  readonly hook = (req: ProxyRequest): Fault | undefined => {
    const key = req.key;
    if (!key) return undefined;
    if (req.method === 'PUT') {
      const b = this.blackouts.find((x) => x.key === undefined && key.includes(x.target === 'blob' ? '/blobs/' : '/journal/'));
      if (b) {
        b.key = key;
        b.since = Date.now();
        this.counts.blackouts++;
      }
      return undefined;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    const b = this.blackouts.find((x) => x.key === key);
    if (!b || (b.served >= b.requests && Date.now() - b.since! >= b.ms)) return undefined;
    b.served++;
    this.counts.notFound++;
    return { action: 'error', status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' };
  };

  /** The situations due at the start of operation `op`. */
  async beforeOp(op: number, hooks: TrialHooks, w: World): Promise<void> {
    const { plan } = this;
    for (const b of plan.blackouts) {
      if (b.atOp !== op) continue;
      this.blackouts.push({ ...b, served: 0 });
      w.note(`blackout armed: the next ${b.target} uploaded reads 404 for ${b.requests} request(s) and ${b.ms} ms`);
    }
    if (plan.exclude?.plantAtOp === op) {
      const writer = this.initial.find((n) => !this.patterns.get(n)?.length)!;
      w.write(writer, 'secret.php', 'create (excluded elsewhere)');
      w.write(writer, 'private/key.pem', 'create (excluded elsewhere)');
    }
    if (plan.join?.atOp === op) await this.join(hooks, w);
    if (plan.rollback?.copyAtOp === op) await this.copyForRollback(hooks, w);
    if (plan.rollback?.revertAtOp === op) await this.revert(hooks, w);
    if (plan.clone?.atOp === op) this.cloneNode(w);
  }

  /** The situations due after operation `op` and its cycle. */
  async afterOp(op: number, hooks: TrialHooks, w: World): Promise<void> {
    for (const e of this.plan.publishEdits) {
      if (e.atOp !== op) continue;
      const nodes = hooks.online();
      const x = nodes[Math.floor(e.pick * nodes.length)]!;
      const keeps = (m: FedNode) => (p: string) => !this.excluded(m)?.(p, false);
      const p = w.fileFor(x, keeps(x));
      const others = nodes.filter((m) => m !== x && keeps(m)(p));
      if (e.concurrent && others.length) {
        const y = w.rng.pick(others);
        w.write(y, p, 'concurrent edit');
        await hooks.command(y, ['run']);
      }
      w.write(x, p, 'edit (recorded by the next run)');
      let fired = false;
      const refuse = (req: ProxyRequest): Fault | undefined | Promise<Fault | undefined> => {
        if (req.method !== 'PUT' && req.method !== 'POST') return hooks.faulty(req);
        if (!fired) {
          fired = true;
          // The run has recorded its changes and starts uploading them: the file changes again.
          if (e.remove) w.removeAt(x, p, 'delete (while its run uploads)');
          else w.write(x, p, 'edit (while its run uploads)');
        }
        return { action: 'error', status: 403, code: 'AccessDenied', message: 'refused by the soak' };
      };
      w.note(`${x.name}: the next run's uploads are refused`);
      await hooks.command(x, ['run'], refuse);
      if (fired) this.counts.publishEdits++;
      else w.note(`${x.name}: the run uploaded nothing`);
    }
  }

  private async join(hooks: TrialHooks, w: World): Promise<void> {
    const n = [...this.pending][0]!;
    if (this.plan.exclude) {
      // The leader, which excludes, housekeeps (a snapshot, and with history 1s pruning) first.
      const leader = [...hooks.online()].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
      await sleep(1100);
      await hooks.command(leader, ['housekeep']);
    }
    this.patterns.set(n, this.plan.join!.patterns);
    this.configure(n);
    w.note(`${n.name} joins${this.plan.join!.patterns.length ? `, excluding ${JSON.stringify(this.plan.join!.patterns)}` : ''}`);
    if (!(await this.init(n, hooks, w)) && !(await this.init(n, hooks, w))) throw new Error(`${n.name}: fedsync init failed twice`);
    this.pending.delete(n);
    this.counts.joins++;
    await hooks.command(n, ['run']);
  }

  private async copyForRollback(hooks: TrialHooks, w: World): Promise<void> {
    const n = this.initial[this.plan.rollback!.node]!;
    this.rollbackCopy = join(this.fed.dir, `rollback-${n.name}`);
    mkdirSync(this.rollbackCopy);
    // cp -a keeps mtimes to the nanosecond, as a VM snapshot does.
    execFileSync('cp', ['-a', n.root, join(this.rollbackCopy, 'root')]);
    execFileSync('cp', ['-a', n.stateDir, join(this.rollbackCopy, 'state')]);
    w.note(`${n.name}: root and state dir copied (a VM snapshot)`);
    // Something the node will publish after the copy, lost on its disk by the revert.
    w.create(n);
    await hooks.command(n, ['run']);
  }

  private async revert(hooks: TrialHooks, w: World): Promise<void> {
    const n = this.initial[this.plan.rollback!.node]!;
    const copy = this.rollbackCopy!;
    // The node runs once more (no random faults), so what it wrote since the copy is published.
    const r = await hooks.command(n, ['run'], this.hook);
    const before = new Set([...snapshotTree(join(copy, 'root')).values()].map((e) => e.sha256));
    const ex = this.excluded(n);
    for (const [p, e] of n.snapshot()) {
      if (e.kind !== 'file' || before.has(e.sha256)) continue;
      // Only the node's disk held it: content at a path it excludes, or left unpublished.
      if (r.code !== 0 || ex?.(p, false)) w.destroyed.set(e.sha256!, `op ${w.op} ${n.name} rollback of ${p}`);
    }
    rmSync(n.root, { recursive: true, force: true });
    rmSync(n.stateDir, { recursive: true, force: true });
    execFileSync('cp', ['-a', join(copy, 'root'), n.root]);
    execFileSync('cp', ['-a', join(copy, 'state'), n.stateDir]);
    rmSync(copy, { recursive: true, force: true });
    this.counts.rollbacks++;
    w.note(`${n.name}: root and state dir rolled back to the copy of op ${this.plan.rollback!.copyAtOp}`);
  }

  private cloneNode(w: World): void {
    const src = this.initial[this.plan.clone!.node]!;
    const n = new FedNode(this.fed, `${src.name}2`);
    mkdirSync(n.dir);
    execFileSync('cp', ['-a', src.root, n.root]);
    execFileSync('cp', ['-a', src.stateDir, n.stateDir]);
    n.extraEnv = src.extraEnv;
    n.id = src.id;
    const skew = w.skew.get(src.name);
    if (skew !== undefined) w.skew.set(n.name, skew);
    this.patterns.set(n, this.patterns.get(src) ?? []);
    this.configure(n);
    this.fed.nodes.push(n);
    this.counts.clones++;
    w.note(`${n.name}: a clone of ${src.name}'s root and state dir, started as node ${JSON.stringify(n.name)}`);
  }
}
