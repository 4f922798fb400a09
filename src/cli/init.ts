import { initSet } from '../sync/init.js';
import { print, selectSets, setup, type GlobalOptions } from './common.js';

export async function initCommand(opts: GlobalOptions & { set?: string }): Promise<number> {
  const { config, log } = setup(opts);
  for (const set of selectSets(config, opts.set)) {
    const r = await initSet(config, set, log);
    print(`${r.set}: node ${config.node} (${r.nodeId})${r.newNode ? ' created' : ''}`);
    print(`  root   ${r.root} (marker ${r.root}/.fedsync)`);
    print(`  store  ${r.store}${r.newStore ? ' (new federation: format.json written)' : ' (joined existing federation)'}`);
    print(`  mode   ${set.mode}, role ${set.role}`);
  }
  print();
  print(`next: \`fedsync run\` once by hand, then \`fedsync cron --install\` to schedule it`);
  return 0;
}
