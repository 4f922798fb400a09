// `npm run test:soak -- [--trials N] [--seed S] [--nodes K] [--ops N] [--jobs J] [--rgw]
//  [--kinds a,b | --without-kinds a,b] [--verbose] [--watch-minutes M]`: as many soak trials as wanted
// (seeds S, S+1, ...; S random unless given), then one summary line. --kinds allows only the
// kinds listed (kinds.ts), each per-trial kind among them in every trial, to isolate it;
// --without-kinds leaves those out; --verbose prints every trial's op log. With --watch-minutes, the watch daemon soak
// (watch-soak.ts) runs after them. Exits 1 when any trial had a violation.
import { parseArgs } from 'node:util';
import { faketimeLib } from '../support/faketime.js';
import { startSoakServer } from './server.js';
import { parseKinds, summarizeSituations, type KindFilter } from './kinds.js';
import { CI_TRIAL, describeTrial, runTrial, type TrialResult } from './trial.js';
import { watchSoak } from './watch-soak.js';

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '10' },
    seed: { type: 'string' },
    nodes: { type: 'string', default: String(CI_TRIAL.nodes) },
    ops: { type: 'string', default: String(CI_TRIAL.ops) },
    jobs: { type: 'string', default: '2' },
    rgw: { type: 'boolean', default: false },
    kinds: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'without-kinds': { type: 'string' },
    'watch-minutes': { type: 'string', default: '0' },
  },
});
const trials = Number(values.trials);
const first = values.seed !== undefined ? Number(values.seed) >>> 0 : (Math.random() * 2 ** 31) >>> 0;
const nodes = Number(values.nodes);
if (!(nodes >= 2 && nodes <= 5)) throw new Error('--nodes must be 2..5');
if (values.kinds !== undefined && values['without-kinds'] !== undefined) throw new Error('--kinds and --without-kinds: give one of them');
const kinds: KindFilter = {};
if (values.kinds !== undefined) kinds.only = parseKinds(values.kinds, '--kinds');
if (values['without-kinds'] !== undefined) kinds.without = parseKinds(values['without-kinds'], '--without-kinds');
const options = { ...CI_TRIAL, nodes, ops: Number(values.ops), skew: faketimeLib() !== null, kinds };
if (kinds.only) console.log(`# only: ${[...kinds.only].join(', ')}`);
if (kinds.without) console.log(`# without: ${[...kinds.without].join(', ')}`);
if (!options.skew) console.log('# libfaketime not installed: no clock skew (apt-get install -y faketime)');

const server = await startSoakServer(values.rgw);
const results: TrialResult[] = [];
const started = Date.now();
try {
  let next = 0;
  const worker = async () => {
    while (next < trials) {
      const seed = (first + next++) >>> 0;
      const r = await runTrial(server.target, seed, options);
      results.push(r);
      console.log(describeTrial(r));
      if (r.violations.length) console.log(`  ${r.violations.join('\n  ')}`);
      if (r.violations.length || values.verbose) console.log(`  op log:\n    ${r.log.join('\n    ')}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(values.jobs)) }, worker));
} finally {
  await server.stop();
}
const sum = (f: (r: TrialResult) => number) => results.reduce((s, r) => s + f(r), 0);
const failed = results.filter((r) => r.violations.length).map((r) => r.seed);
console.log(
  `soak: ${results.length} trials (seeds ${first}..${(first + trials - 1) >>> 0}, ${nodes} nodes, ${options.ops} ops) on ${server.target.name} in ${Math.round((Date.now() - started) / 1000)} s; ` +
    `${sum((r) => r.faults.total)} faults injected, ${sum((r) => r.kills)} kills (${sum((r) => r.killsLanded)} landed), ` +
    `${sum((r) => r.runs)} runs, ${sum((r) => r.housekeeps)} housekeeps, ` +
    `${sum((r) => r.skewedNodes)} skewed nodes in ${results.filter((r) => r.skewedNodes).length} trials, ${sum((r) => r.offline)} offline spells, ` +
    `${results.filter((r) => r.pruning).length} pruning trials, ${results.filter((r) => r.rounds === 3).length} third quiescent rounds, ` +
    `${summarizeSituations(results.map((r) => r.situations))}; ${sum((r) => r.violations.length)} violations` +
    (failed.length ? ` (seeds ${failed.join(', ')})` : ''),
);
let watchOk = true;
if (Number(values['watch-minutes']) > 0) watchOk = await watchSoak({ minutes: Number(values['watch-minutes']), rgw: values.rgw, log: console.log });
process.exit(failed.length || !watchOk ? 1 : 0);
