// The kinds of trouble a soak trial can make, which of them a run allows (`--kinds`,
// `--without-kinds`), and the per-trial plan of the situations (situations.ts) drawn from the
// seed.
//
// The plan comes from a stream of its own (seed ^ PLAN_SALT), drawn in full whatever is allowed:
// a trial with none of the situations makes exactly the schedule it made before they existed,
// and `--kinds rollback` replays a seed's rollback with the same parameters as the full run.
import { Rng } from '../e2e/harness.js';

/** Per request or per operation, each at its usual rate: faults, kills, offline spells. */
export const EVENT_KINDS = ['faults', 'kills', 'offline'] as const;
/** Decided once per trial: clock skew, pruning history, and the situations. */
export const TRIAL_KINDS = ['skew', 'pruning', 'exclude', 'join', 'blackout', 'rollback', 'parallel-init', 'clone', 'publish-edit'] as const;
export type Kind = (typeof EVENT_KINDS)[number] | (typeof TRIAL_KINDS)[number];
export const KINDS: readonly Kind[] = [...EVENT_KINDS, ...TRIAL_KINDS];

/**
 * Which kinds may happen. `only`: just these; a per-trial kind listed there happens in every
 * trial (to isolate it), a per-event kind at its usual rate. `without`: every kind but these,
 * each at its usual rate.
 */
export interface KindFilter {
  only?: ReadonlySet<Kind>;
  without?: ReadonlySet<Kind>;
}

/** Parses `a,b,c` into kinds, or throws naming the unknown one and the known ones. */
export function parseKinds(list: string, flag: string): Set<Kind> {
  const out = new Set<Kind>();
  for (const k of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(KINDS as readonly string[]).includes(k)) throw new Error(`${flag}: unknown kind ${JSON.stringify(k)} (known: ${KINDS.join(', ')})`);
    out.add(k as Kind);
  }
  return out;
}

/** Whether `kind` happens, given what the seed drew for it. */
export function allowed(filter: KindFilter | undefined, kind: Kind, drawn: boolean): boolean {
  if (filter?.only) return filter.only.has(kind) && ((TRIAL_KINDS as readonly string[]).includes(kind) || drawn);
  if (filter?.without?.has(kind)) return false;
  return drawn;
}

export const RATES = {
  exclude: 0.15,
  /** A node joining late: in most exclude trials (a bootstrap from a snapshot an excluding leader wrote), in a few others. */
  joinWithExclude: 0.6,
  join: 0.1,
  blackout: 0.15,
  rollback: 0.15,
  parallelInit: 0.15,
  clone: 0.12,
  publishEdit: 0.15,
};

export interface Blackout {
  atOp: number;
  /** The next object of this kind uploaded after `atOp` is the one that reads 404. */
  target: 'blob' | 'segment';
  /** It reads 404 for at least this many GET/HEAD requests... */
  requests: number;
  /** ...and for at least this long after its upload (ms); quiescence ends it anyway. */
  ms: number;
}

export interface PublishEdit {
  atOp: number;
  /** The file is deleted rather than rewritten while the cycle publishes. */
  remove: boolean;
  /** Another node wrote the same path and published first (a conflict to lose or win). */
  concurrent: boolean;
  /** Which online node, as a share of the list ([0, 1)). */
  pick: number;
}

/** What the trial's situations will be; null or empty when not happening. */
export interface Plan {
  /** Per node rank by id (0 = smallest id, the housekeeping leader), its exclude patterns. */
  exclude: { patterns: string[][]; plantAtOp: number } | null;
  /** The last node is not initialised with the others; it joins (init, then run) at `atOp`. */
  join: { atOp: number; patterns: string[] } | null;
  blackouts: Blackout[];
  /** Node index; copy of its root and state dir at `copyAtOp`, restored at `revertAtOp`. */
  rollback: { node: number; copyAtOp: number; revertAtOp: number } | null;
  /** Node indexes that run `init` at once (the others after them), and whether with a passphrase. */
  parallelInit: { nodes: number[]; passphrase: boolean } | null;
  /** Node index whose disk is copied at `atOp` and started as another node. */
  clone: { node: number; atOp: number } | null;
  publishEdits: PublishEdit[];
}

const PLAN_SALT = 0x6b696e64;
const EXCLUDES = [['secret.php', 'private/'], ['secret.php'], ['private/']];

/** Draws the situations of trial `seed` for `nodes` nodes and `ops` operations. */
export function drawPlan(seed: number, nodes: number, ops: number, filter: KindFilter | undefined): Plan {
  const r = new Rng(seed ^ PLAN_SALT);
  const op = (lo: number, hi: number) => r.int(Math.max(1, Math.min(lo, ops)), Math.max(1, Math.min(hi, ops)));
  // Every draw happens whatever is allowed, so that allowing or not one kind never moves another.
  const exclude = r.chance(RATES.exclude);
  // Rank 0 (the smallest id: the housekeeping leader) always excludes, the others at random.
  const patterns = Array.from({ length: nodes }, (_, i) => (i === 0 || r.chance(0.5) ? r.pick(EXCLUDES) : []));
  // What the excluding nodes keep out is written before the late node joins.
  const plantAtOp = op(1, Math.ceil(ops / 3));
  const joinDraw = r.next();
  const joinAtOp = op(Math.ceil(ops / 3) + 1, ops);
  const joinPatterns = r.chance(0.3) ? r.pick(EXCLUDES) : [];
  const blackout = r.chance(RATES.blackout);
  const blackouts = Array.from({ length: r.int(1, 3) }, (): Blackout => ({
    atOp: op(1, ops - 1),
    target: r.chance(0.6) ? 'blob' : 'segment',
    requests: r.int(1, 4),
    ms: r.int(300, 5000),
  }));
  const rollback = r.chance(RATES.rollback);
  const rollbackNode = r.int(0, nodes - 1);
  const copyAtOp = op(1, ops - 3);
  const revertAtOp = op(copyAtOp + 2, ops);
  const parallel = r.chance(RATES.parallelInit);
  const parallelNodes = r.shuffle(Array.from({ length: nodes }, (_, i) => i)).slice(0, r.int(2, nodes));
  const passphrase = r.chance(0.5);
  const clone = r.chance(RATES.clone);
  const cloneNode = r.int(0, nodes - 1);
  const cloneAtOp = op(1, ops - 1);
  const publishEdit = r.chance(RATES.publishEdit);
  const publishEdits = Array.from({ length: r.int(1, 2) }, (): PublishEdit => ({ atOp: op(1, ops), remove: r.chance(0.3), concurrent: r.chance(0.5), pick: r.next() }));

  const excludeOn = allowed(filter, 'exclude', exclude);
  const joinOn = nodes >= 3 && allowed(filter, 'join', joinDraw < (excludeOn ? RATES.joinWithExclude : RATES.join));
  const initial = joinOn ? nodes - 1 : nodes;
  // Someone must publish what the excluding nodes keep out: at least one initial node excludes nothing.
  const atOnce = parallelNodes.filter((i) => i < initial);
  if (excludeOn && patterns.slice(0, initial).every((p) => p.length)) patterns[initial - 1] = [];
  return {
    exclude: excludeOn ? { patterns, plantAtOp } : null,
    join: joinOn ? { atOp: joinAtOp, patterns: excludeOn ? joinPatterns : [] } : null,
    blackouts: allowed(filter, 'blackout', blackout) ? blackouts : [],
    rollback: ops >= 4 && allowed(filter, 'rollback', rollback) ? { node: rollbackNode % initial, copyAtOp, revertAtOp } : null,
    parallelInit: allowed(filter, 'parallel-init', parallel) ? { nodes: atOnce.length >= 2 ? atOnce : [0, 1], passphrase } : null,
    clone: allowed(filter, 'clone', clone) ? { node: cloneNode % initial, atOp: cloneAtOp } : null,
    publishEdits: allowed(filter, 'publish-edit', publishEdit) ? publishEdits : [],
  };
}

/** What a trial's situations did, for its line and the run's summary. */
export interface SituationCounts {
  /** Nodes with an exclude (0: not an exclude trial). */
  excludingNodes: number;
  /** Whether the leader (smallest id) was among them when the trial started. */
  leaderExcludes: boolean;
  joins: number;
  blackouts: number;
  /** 404s the proxy answered for blacked-out objects. */
  notFound: number;
  rollbacks: number;
  /** Nodes that ran `init` at once (0: not a parallel-init trial). */
  parallelInit: number;
  encrypted: boolean;
  clones: number;
  publishEdits: number;
}

export function noSituations(): SituationCounts {
  return { excludingNodes: 0, leaderExcludes: false, joins: 0, blackouts: 0, notFound: 0, rollbacks: 0, parallelInit: 0, encrypted: false, clones: 0, publishEdits: 0 };
}

/** The situations of one trial, for its line: empty when none. */
export function describeSituations(s: SituationCounts): string {
  const parts: string[] = [];
  if (s.excludingNodes) parts.push(`exclude on ${s.excludingNodes} node(s)${s.leaderExcludes ? ' incl. the leader' : ''}`);
  if (s.joins) parts.push(`${s.joins} late join(s)`);
  if (s.blackouts) parts.push(`${s.blackouts} 404 blackout(s) (${s.notFound} 404s)`);
  if (s.rollbacks) parts.push(`${s.rollbacks} rollback(s)`);
  if (s.parallelInit) parts.push(`parallel init of ${s.parallelInit}${s.encrypted ? ' with a passphrase' : ''}`);
  if (s.clones) parts.push(`${s.clones} clone(s)`);
  if (s.publishEdits) parts.push(`${s.publishEdits} edit(s) before a failed publish`);
  return parts.join(', ');
}

/** The run's summary of situations, over every trial, as "N in T trials" per kind. */
export function summarizeSituations(all: SituationCounts[]): string {
  const sum = (f: (s: SituationCounts) => number) => all.reduce((a, s) => a + f(s), 0);
  const trials = (f: (s: SituationCounts) => number | boolean) => all.filter((s) => f(s)).length;
  return (
    `exclude in ${trials((s) => s.excludingNodes)} trials (${sum((s) => s.excludingNodes)} excluding nodes, the leader among them in ${trials((s) => s.leaderExcludes)}), ` +
    `${sum((s) => s.joins)} late joins, ` +
    `${sum((s) => s.blackouts)} 404 blackouts in ${trials((s) => s.blackouts)} trials (${sum((s) => s.notFound)} 404s answered), ` +
    `${sum((s) => s.rollbacks)} rollbacks, ` +
    `parallel init in ${trials((s) => s.parallelInit)} trials (${trials((s) => s.encrypted)} with a passphrase), ` +
    `${sum((s) => s.clones)} clones, ` +
    `${sum((s) => s.publishEdits)} edits before a failed publish in ${trials((s) => s.publishEdits)} trials`
  );
}
