// What a cycle costs the store, counted by a proxy between the fedsync processes and the S3
// server (the nodes' `endpoint` is the proxy). DESIGN.md, "Idle cost": an idle cycle is one
// ListObjectsV2 of heads/, whatever the number of files; publishing one change is the blob,
// the segment and the head on top of that (and a HEAD of the segment's key where the server
// ignores conditional writes).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startProxy, type Proxy } from '../support/proxy.js';
import type { S3Target } from '../support/s3.js';
import { assertTreesEqual, Federation, Rng, servers, type FedNode } from './harness.js';

const DIRS = 100;
const PER_DIR = 100; // 10,000 files

for (const server of servers('request counts')) {
  describe(`request counts on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    let proxy: Proxy;
    before(async () => {
      target = await server.start();
      proxy = await startProxy({ upstream: target.endpoint });
    });
    after(async () => {
      await proxy?.stop();
      await target?.stop();
    });

    it('10,000 files: an idle cycle is exactly one LIST of heads/, a one-file change at most 4 requests', { timeout: 900_000 }, async (t) => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'], endpoint: proxy.endpoint });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      const rng = new Rng(10_000);
      try {
        for (let d = 0; d < DIRS; d++) {
          const dir = `d${String(d).padStart(2, '0')}`;
          mkdirSync(a.abs(dir));
          for (let f = 0; f < PER_DIR; f++) {
            writeFileSync(a.abs(`${dir}/f${String(f).padStart(3, '0')}.txt`), Buffer.concat([Buffer.from(`${dir}/${f}\n`), rng.bytes(rng.int(0, 200))]));
          }
        }
        const timed = async (n: FedNode, what: string) => {
          proxy.reset();
          const r = await n.run([], { timeoutMs: 400_000 });
          t.diagnostic(`${n.name} ${what}: ${r.ms} ms, ${proxy.counts().total} requests ${JSON.stringify(proxy.counts())}`);
          return proxy.counts();
        };
        await timed(a, 'publishes 10,000 files');
        await timed(b, 'applies them');
        assertTreesEqual([
          { name: 'A', tree: a.snapshot() },
          { name: 'B', tree: b.snapshot() },
        ]);
        // Heads and acks settle: each node sees the other's head move once more at most.
        for (let i = 0; i < 2; i++) {
          await timed(a, `settling cycle ${i + 1}`);
          await timed(b, `settling cycle ${i + 1}`);
        }

        for (const n of [a, b]) {
          proxy.reset();
          const r = await n.run();
          const log = proxy.log().map((x) => ({ method: x.method, kind: x.kind, key: x.key, prefix: x.query.prefix, status: x.status }));
          t.diagnostic(`${n.name} idle cycle: ${r.ms} ms, ${JSON.stringify(log)}`);
          assert.equal(log.length, 1, `${n.name}'s idle cycle made ${log.length} requests, not 1: ${JSON.stringify(log, null, 1)}`);
          assert.equal(log[0]!.kind, 'list', `${n.name}'s idle request is not a LIST: ${JSON.stringify(log[0])}`);
          assert.equal(log[0]!.method, 'GET');
          assert.equal(log[0]!.prefix, `${fed.setPrefix}heads/`, `${n.name}'s idle LIST is not of heads/`);
          assert.equal(log[0]!.status, 200);
        }

        // One changed file on A: LIST heads/, PUT blob, PUT segment, PUT head.
        const changed = 'd42/f042.txt';
        writeFileSync(a.abs(changed), 'changed on A\n');
        proxy.reset();
        const r = await a.run();
        const log = proxy.log().map((x) => `${x.method} ${x.kind} ${x.key ?? `?prefix=${x.query.prefix}`} -> ${x.status}`);
        t.diagnostic(`A publishes one change: ${r.ms} ms, ${log.length} requests:\n  ${log.join('\n  ')}`);
        // Where the server ignores conditional writes (s3rver), the first segment upload of a
        // run is preceded by a HEAD of its key (DESIGN rule 6); RGW honours If-None-Match.
        const heads = proxy.log().filter((x) => x.kind === 'head');
        const headAllowed = server.name === 'rgw' ? 0 : 1;
        assert.ok(heads.length <= headAllowed, `HEAD requests: ${log.join('\n  ')}`);
        assert.ok(heads.every((x) => x.key!.startsWith(`${fed.setPrefix}journal/${a.id}/`)), `only a HEAD of the next segment: ${log.join('\n  ')}`);
        assert.ok(log.length <= 4 + heads.length, `publishing one change took ${log.length} requests (at most 4, and the HEAD):\n  ${log.join('\n  ')}`);
        const kinds = proxy.log().map((x) => x.kind);
        assert.equal(kinds.filter((k) => k === 'list').length, 1, 'one LIST of heads/');
        assert.ok(kinds.every((k) => k === 'list' || k === 'put' || k === 'head'), `only PUTs besides: ${kinds.join(', ')}`);
        const puts = proxy.log().filter((x) => x.kind === 'put').map((x) => x.key!.slice(fed.setPrefix.length));
        assert.ok(puts.includes(`heads/${a.id}.json`), `the head was written: ${puts.join(', ')}`);
        assert.ok(puts.some((k) => k.startsWith(`journal/${a.id}/`)), `a segment was written: ${puts.join(', ')}`);

        proxy.reset();
        await b.run();
        t.diagnostic(`B applies it: ${JSON.stringify(proxy.counts())}`);
        assert.equal(readFileSync(b.abs(changed), 'utf8'), 'changed on A\n');
        // LIST, GET head, GET segment, GET blob (and a head write for B's moved ack).
        assert.ok(proxy.counts().total <= 5, `B applying one change took ${proxy.counts().total} requests`);
      } finally {
        await fed.close();
      }
    });
  });
}
