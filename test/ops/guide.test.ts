// docs/operations.md, end to end, on a file:// store with the built binary: set up two nodes
// (init, doctor, run, cron, status), add a third pre-seeded with a copy, replace a failed
// node, read the metrics, and restore a deleted upload.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parsePrometheus, value } from './promtext.js';
import { expectCode, makeNode, tempDir, type TestNode } from './support.js';

const SET = 'uploads';

function tree(root: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (r === '.fedsync') continue;
    if (d.isDirectory()) Object.assign(out, tree(root, r));
    else out[r] = readFileSync(join(root, r), 'utf8');
  }
  return out;
}

function statusOf(node: TestNode): { exitCode: number; sets: { health: string; peers: { name: string; lagSegments: number; node: string }[]; status: { nodeId: string } }[] } {
  return JSON.parse(node.run(['status', '--json']).stdout);
}

describe('the operations guide', () => {
  it('two nodes, a third, a replaced node, monitoring and a restore', (t) => {
    const dir = tempDir(t);
    const env = { FEDSYNC_CRON_DIR: join(dir, 'cron.d') };
    const node = (name: string) => makeNode(dir, { node: name, sets: [{ name: SET, extra: 'exclude = ["cache/", "*.tmp"]\n' }] });

    // 2. web1, the first node.
    const web1 = node('web1');
    mkdirSync(join(web1.root(SET), '2026', '11'), { recursive: true });
    writeFileSync(join(web1.root(SET), '2026', '11', 'cat.jpg'), 'a cat');
    writeFileSync(join(web1.root(SET), '2026', '11', 'dog.jpg'), 'a dog');
    mkdirSync(join(web1.root(SET), 'cache'));
    writeFileSync(join(web1.root(SET), 'cache', 'page.html'), 'node-local cache');
    assert.match(expectCode(web1.run(['init']), 0, 'web1 init').stdout, /new federation: format\.json written/);
    const doctor = expectCode(web1.run(['doctor'], env), 0, 'web1 doctor');
    assert.doesNotMatch(doctor.stdout, /^FAIL/m);
    expectCode(web1.run(['run']), 0, 'web1 first run');
    const cron = expectCode(web1.run(['cron']), 0, 'web1 cron').stdout;
    assert.match(cron, new RegExp(`^\\* \\* \\* \\* \\* root \\S+ -c ${web1.config} run >>`, 'm'));
    expectCode(web1.run(['cron', '--install'], env), 0, 'web1 cron --install');
    expectCode(web1.run(['status']), 0, 'web1 status');

    // web2 joins.
    const web2 = node('web2');
    assert.match(expectCode(web2.run(['init']), 0, 'web2 init').stdout, /joined existing federation/);
    expectCode(web2.run(['run']), 0, 'web2 first run');
    assert.deepEqual(tree(web2.root(SET)), { '2026/11/cat.jpg': 'a cat', '2026/11/dog.jpg': 'a dog' }, 'everything but the excluded cache');
    writeFileSync(join(web2.root(SET), '2026', '11', 'bird.jpg'), 'a bird, uploaded through web2');
    expectCode(web2.run(['run']), 0, 'web2 run');
    expectCode(web1.run(['run']), 0, 'web1 run');
    assert.equal(readFileSync(join(web1.root(SET), '2026', '11', 'bird.jpg'), 'utf8'), 'a bird, uploaded through web2');
    for (const [n, peer] of [[web1, 'web2'], [web2, 'web1']] as const) {
      const s = statusOf(n);
      assert.equal(s.exitCode, 0);
      assert.deepEqual(s.sets[0]!.peers.map((p) => [p.name, p.lagSegments]), [[peer, 0]]);
    }

    // 3. A third node, pre-seeded with a copy of web1's tree: adopted, nothing transferred twice.
    const web3 = node('web3');
    // As `rsync -a` would: times preserved, the marker left out.
    cpSync(web1.root(SET), web3.root(SET), { recursive: true, preserveTimestamps: true, filter: (src) => !src.endsWith('.fedsync') });
    expectCode(web3.run(['init']), 0, 'web3 init');
    expectCode(web3.run(['run']), 0, 'web3 first run');
    assert.deepEqual(Object.keys(tree(web3.root(SET))).filter((p) => p.includes('sync-conflict')), [], 'no conflict copies');
    const m3 = parsePrometheus(readFileSync(join(web3.stateDir, 'fedsync.prom'), 'utf8'));
    assert.equal(value(m3, 'fedsync_bytes_down_total', { set: SET }), 0, 'identical files are adopted, not downloaded');
    expectCode(web3.run(['status']), 0, 'web3 status');

    // 4. web2 dies; a new machine takes its name. The old id is retired from web1.
    const oldId = statusOf(web2).sets[0]!.status.nodeId;
    rmSync(join(dir, 'web2'), { recursive: true });
    const web2b = node('web2');
    expectCode(web2b.run(['init']), 0, 'new web2 init');
    expectCode(web2b.run(['run']), 0, 'new web2 first run');
    assert.deepEqual(tree(web2b.root(SET)), { '2026/11/cat.jpg': 'a cat', '2026/11/dog.jpg': 'a dog', '2026/11/bird.jpg': 'a bird, uploaded through web2' });
    assert.notEqual(statusOf(web2b).sets[0]!.status.nodeId, oldId);
    expectCode(web1.run(['run']), 0, 'web1 run');
    assert.match(expectCode(web1.run(['nodes', '--set', SET]), 0, 'nodes').stdout, new RegExp(oldId));
    expectCode(web1.run(['nodes', 'forget', oldId, '--set', SET, '--force']), 0, 'nodes forget');

    // 5. Monitoring: status exit codes and the metrics file.
    const m1 = parsePrometheus(readFileSync(join(web1.stateDir, 'fedsync.prom'), 'utf8'));
    assert.ok(value(m1, 'fedsync_cycles_total', { set: SET }) >= 3);
    assert.equal(value(m1, 'fedsync_cycle_failures_total', { set: SET }), 0);
    rmSync(join(web1.root(SET), '.fedsync'), { recursive: true }); // an unmounted volume
    expectCode(web1.run(['run']), 1, 'a run on a root without its marker');
    expectCode(web1.run(['doctor'], env), 1, 'doctor sees the missing marker');
    expectCode(web1.run(['init']), 0, 'init puts it back');

    // 6. An editor deletes an upload on web1; web3 restores it from the history.
    rmSync(join(web1.root(SET), '2026', '11', 'cat.jpg'));
    expectCode(web1.run(['run']), 0, 'web1 publishes the deletion');
    expectCode(web3.run(['run']), 0, 'web3 applies it');
    assert.equal(existsSync(join(web3.root(SET), '2026', '11', 'cat.jpg')), false);
    const history = expectCode(web3.run(['history', '--set', SET, '2026/11/cat.jpg']), 0, 'history').stdout;
    assert.match(history, /2026\/11\/cat\.jpg {2}5 B/);
    assert.match(history, /2026\/11\/cat\.jpg {2}deleted/);
    expectCode(web3.run(['restore', '--set', SET, '2026/11/cat.jpg']), 0, 'restore');
    assert.equal(readFileSync(join(web3.root(SET), '2026', '11', 'cat.jpg'), 'utf8'), 'a cat');
    expectCode(web1.run(['run']), 0, 'web1 gets it back');
    assert.equal(readFileSync(join(web1.root(SET), '2026', '11', 'cat.jpg'), 'utf8'), 'a cat');
    for (const n of [web1, web2b, web3]) expectCode(n.run(['status']), 0, `${n.config} status`);
  });
});
