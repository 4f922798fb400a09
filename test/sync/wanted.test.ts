// Wanted records (DESIGN rule 7) meeting local changes and exclude changes: a local edit made
// while a newer remote version is wanted is decided against that version (rule 3), never
// taken for an edit of it; a path no longer excluded is placed from the entry kept for it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { blobKey } from '../../src/sync/layout.js';
import { cleanup, cluster, cycle, sha, withManifest } from './harness.js';

after(cleanup);

const wanted = (n: Parameters<typeof withManifest>[0]) => withManifest(n, (m) => m.wantedSummary().count);

describe('wanted records', () => {
  it('a local edit made while a newer version is wanted is a concurrent version: nothing is lost', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    writeFileSync(join(a.root, 'late.txt'), 'v1');
    await cycle(a);
    await cycle(b);
    writeFileSync(join(a.root, 'late.txt'), 'v2 from alpha');
    await cycle(a);
    // v2's blob is unreadable when beta runs.
    const blob = join(c.storeDir, blobKey(sha('v2 from alpha')));
    renameSync(blob, `${blob}.away`);
    await cycle(b);
    assert.equal(readFileSync(join(b.root, 'late.txt'), 'utf8'), 'v1');
    assert.equal(wanted(b), 1);

    // beta's user edits the v1 it has; the blob comes back.
    writeFileSync(join(b.root, 'late.txt'), 'edited on beta');
    renameSync(`${blob}.away`, blob);
    await cycle(b);
    await cycle(a);
    await cycle(b);
    assert.equal(wanted(b), 0);
    for (const n of [a, b]) {
      const names = readdirSync(n.root).filter((x) => x !== '.fedsync').sort();
      const contents = names.map((x) => readFileSync(join(n.root, x), 'utf8')).sort();
      assert.deepEqual(contents, ['edited on beta', 'v2 from alpha'], `${n.name}: both versions, one as a conflict copy (${names.join(', ')})`);
      assert.equal(readFileSync(join(n.root, 'late.txt'), 'utf8'), 'edited on beta', `${n.name}: the later edit wins`);
    }
  });

  it('a path no longer excluded is placed from the entry kept for it', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const exclude = (n: typeof b, patterns: string[]) => {
      n.config = parseConfig(`node = "${n.name}"\nstate_dir = ${JSON.stringify(n.config.stateDir)}\n\n[store]\nurl = ${JSON.stringify(`file://${join(c.dir, 'store')}`)}\n\n[[sync]]\nname = "${n.set.name}"\npath = ${JSON.stringify(n.root)}\nsettle = "0s"\nexclude = ${JSON.stringify(patterns)}\n`, join(c.dir, n.name, 'fedsync.toml'));
      n.set = n.config.sets[0]!;
    };
    exclude(b, ['secret.php']);
    writeFileSync(join(a.root, 'secret.php'), 'alpha secret');
    writeFileSync(join(a.root, 'index.php'), 'index');
    await cycle(a);
    await cycle(b);
    assert.deepEqual(readdirSync(b.root).filter((x) => x !== '.fedsync'), ['index.php']);
    assert.equal(withManifest(b, (m) => m.getEntry('secret.php')?.absent), 'excluded');
    exclude(b, []);
    await cycle(b);
    assert.equal(readFileSync(join(b.root, 'secret.php'), 'utf8'), 'alpha secret');
    assert.equal(wanted(b), 0);
  });
});
