// The stat recorded for a file put in place is the one fedsync itself produced: an
// application writing the file after its rename and before the entries are committed (up to
// 256 renames share that commit) must be seen as a local change by the next scan, not taken
// for fedsync's own write and later overwritten. The write is made from inside the closing
// commit of the apply (the first manifest transaction after the file appears on disk), the
// latest moment the window allows; no process boundary can be timed that precisely.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCycle } from '../../src/sync/cycle.js';
import { openSession } from '../../src/sync/session.js';
import { cleanup, cluster, cycle, journal, sha } from './harness.js';

after(cleanup);

describe('the stat recorded after a rename', () => {
  it('is what fedsync wrote: an application write in the commit window is published, not overwritten', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    writeFileSync(join(a.root, 'base.txt'), 'base');
    await cycle(a);
    await cycle(b);
    for (let i = 0; i < 5; i++) writeFileSync(join(a.root, `f${i}.txt`), `from alpha ${i}`);
    await cycle(a);

    const target = join(b.root, 'f2.txt');
    const appWrite = 'written by the application on beta, right after fedsync put it in place';
    const session = openSession(b.config, b.set, b.log);
    const m = session.manifest;
    const transaction = m.transaction.bind(m);
    let wrote = false;
    m.transaction = <T>(fn: () => T): T => {
      if (!wrote && existsSync(target)) {
        wrote = true;
        writeFileSync(target, appWrite);
      }
      return transaction(fn);
    };
    try {
      const r = await runCycle(b.config, b.set, b.log, { session });
      assert.ok(r.ok, r.error?.message);
    } finally {
      await session.close();
    }
    assert.ok(wrote, 'the application wrote inside the window');
    assert.equal(readFileSync(target, 'utf8'), appWrite);

    // beta's next cycle sees the application's write as the local change it is.
    await cycle(b);
    const published = journal(c, b.id).flatMap((s) => s.records).filter((r) => r.path === 'f2.txt');
    assert.deepEqual(published.map((r) => r.digest), [sha(appWrite)], 'beta published the application write');
    await cycle(a);
    assert.equal(readFileSync(join(a.root, 'f2.txt'), 'utf8'), appWrite, 'alpha has the application write');
    assert.equal(readFileSync(target, 'utf8'), appWrite, 'beta kept it');
  });
});
