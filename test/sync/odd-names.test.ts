// DESIGN rule 8 in process: the scan does not publish what receivers would refuse (a
// backslash, a name that is not UTF-8, a symlink leaving the root), warns
// once per path whatever the number of cycles, lists each in the manifest's `skipped` table
// (what status shows) until it is renamed or removed; a scan of one subtree (the watcher's)
// leaves the rows of the others alone.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { skippedSummary } from '../../src/manifest/skipped.js';
import { cleanup, cluster, cycle, journal, logLines, settle, tree, withManifest } from './harness.js';

after(cleanup);

const WARNING = 'not publishing a path other nodes would refuse';

describe('symmetric validation (rule 8) in the scan', () => {
  it('skips unpublishable paths once each, lists them, and lets a fixed one through', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    writeFileSync(join(a.root, 'ok.txt'), 'fine');
    writeFileSync(join(a.root, 'tab\tname.txt'), 'a tab is a valid name');
    writeFileSync(join(a.root, 'back\\slash.txt'), 'refused by rule 4');
    mkdirSync(join(a.root, 'win\\dir'));
    writeFileSync(join(a.root, 'win\\dir', 'inner.txt'), 'below a refused name');
    writeFileSync(Buffer.from(`${a.root}/caf\xe9.txt`, 'latin1'), 'latin-1 name');
    symlinkSync('/etc/passwd', join(a.root, 'passwd'));
    await settle(c, 3);

    const expected = ['back\\slash.txt', 'caf\\xe9.txt', 'passwd', 'win\\dir'];
    const warned = logLines(a).filter((l) => l.msg === WARNING);
    assert.deepEqual(warned.map((l) => l.path).sort(), expected, 'one warning per path over three rounds');
    const listed = withManifest(a, (m) => skippedSummary(m, 50));
    assert.equal(listed.count, expected.length);
    assert.deepEqual(listed.paths.map((p) => p.path), expected);
    assert.match(listed.paths.find((p) => p.path === 'passwd')!.reason, /symlink target is absolute/);

    const published = journal(c, a.id).flatMap((s) => s.records.map((r) => r.path));
    for (const p of ['back\\slash.txt', 'win\\dir', 'win\\dir/inner.txt', 'passwd']) assert.ok(!published.includes(p), `${p} is not published`);
    assert.deepEqual(Object.keys(tree(b.root)).sort(), ['ok.txt', 'tab\tname.txt']);
    assert.deepEqual(logLines(b).filter((l) => l.msg === 'rejected a remote record'), [], 'the receiver had nothing to reject');

    // Fixed: renamed, it is published and leaves the list.
    renameSync(join(a.root, 'back\\slash.txt'), join(a.root, 'back-slash.txt'));
    await settle(c);
    assert.deepEqual(withManifest(a, (m) => skippedSummary(m, 50)).paths.map((p) => p.path), ['caf\\xe9.txt', 'passwd', 'win\\dir']);
    assert.equal(tree(b.root)['back-slash.txt']?.kind, 'file');

    // A scan of one subtree leaves the others' rows in place.
    mkdirSync(join(a.root, 'sub'));
    writeFileSync(join(a.root, 'sub', 'x\\y'), 'x');
    await cycle(a, { only: ['sub'] });
    assert.deepEqual(withManifest(a, (m) => skippedSummary(m, 50)).paths.map((p) => p.path), ['caf\\xe9.txt', 'passwd', 'sub/x\\y', 'win\\dir']);
  });
});
