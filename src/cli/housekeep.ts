import { withSet } from '../sync/cycle.js';
import { housekeep } from '../sync/housekeep/index.js';
import { readMembers } from '../sync/housekeep/leader.js';
import { headKey } from '../sync/layout.js';
import { escapeText } from '../log/escape.js';
import { EXIT, print, selectSets, setup, UserError, type GlobalOptions } from './common.js';

export async function housekeepCommand(opts: GlobalOptions & { set?: string }): Promise<number> {
  const { config, log } = setup(opts);
  for (const set of selectSets(config, opts.set)) {
    const r = await withSet(config, set, log, (ctx) => housekeep(ctx, { force: true }));
    if (!r) {
      print(`${set.name}: busy (a run holds its lock); skipped`);
      continue;
    }
    if (!r.leader) print(`${set.name}: local upkeep done; another node leads store housekeeping`);
    else print(`${set.name}: housekeeping done as leader${r.snapshot ? `; wrote snapshot ${r.snapshot}` : '; no snapshot needed'}`);
  }
  return EXIT.ok;
}

export async function nodesCommand(opts: GlobalOptions & { set?: string }): Promise<number> {
  const { config, log } = setup(opts);
  for (const set of selectSets(config, opts.set)) {
    const members = await withSet(config, set, log, (ctx) => readMembers(ctx).then((m) => ({ m, me: ctx.nodeId })));
    if (!members) throw new UserError(`set "${set.name}" is busy; try again in a moment`);
    print(`${set.name}:`);
    for (const h of members.m.heads) {
      const live = members.m.live.some((l) => l.node === h.node);
      const tags = [h.node === members.me ? 'this node' : '', h.node === members.m.leader ? 'leader' : '', live ? 'live' : 'silent'].filter(Boolean).join(', ');
      print(`  ${h.node}  ${escapeText(h.name || '?').padEnd(16)} ${h.role.padEnd(9)} seq ${String(h.seq).padEnd(6)} heartbeat ${h.heartbeat}  (${tags})`);
    }
  }
  return EXIT.ok;
}

export async function forgetNodeCommand(id: string, opts: GlobalOptions & { set?: string; force?: boolean }): Promise<number> {
  const { config, log } = setup(opts);
  for (const set of selectSets(config, opts.set)) {
    const done = await withSet(config, set, log, async (ctx) => {
      if (id === ctx.nodeId) throw new UserError(`${id} is this node; forget it from another node`, EXIT.usage);
      const m = await readMembers(ctx);
      if (!m.heads.some((h) => h.node === id)) return `${set.name}: no node ${id}`;
      if (m.live.some((h) => h.node === id) && !opts.force) {
        throw new UserError(`node ${id} is live (heartbeat within node_timeout); stop it first, or use --force`, EXIT.usage);
      }
      // Without its head the node no longer counts for acks; its journal is pruned once covered.
      await ctx.store.delete([headKey(id)]);
      return `${set.name}: forgot node ${id}`;
    });
    print(done ?? `${set.name}: busy; try again`);
  }
  return EXIT.ok;
}
