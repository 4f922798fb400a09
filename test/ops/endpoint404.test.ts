// An endpoint that answers 404 to everything (a web server, a wrong path-style setting, a
// missing bucket behind a proxy) is not an empty store: init, run and doctor each fail with
// one line naming the endpoint and bucket, and nothing is recorded as published.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { S3Store } from '../../src/store/s3/s3.js';
import { fedsyncAsync, makeNode, tempDir } from './support.js';

let server: Server;
let endpoint: string;
const seen: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push(req.method ?? '');
    req.resume();
    req.on('end', () => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end(req.method === 'HEAD' ? undefined : '<html><body><h1>404 Not Found</h1></body></html>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const ANSWER = /the endpoint answered 404 to a (GET|HEAD|PUT|LIST|DELETE).*is http:\/\/127\.0\.0\.1:\d+ an S3 server, and does bucket wp-sync exist there\?/;

describe('an endpoint that answers 404 to everything', () => {
  it('fails every store operation with a message naming endpoint and bucket, never "absent"', async () => {
    const s = new S3Store(
      { bucket: 'wp-sync', prefix: 'prod/webroot', endpoint, region: 'us-east-1', forcePathStyle: true },
      { credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 },
    );
    try {
      await assert.rejects(s.get('format.json'), ANSWER);
      await assert.rejects(s.stat('blobs/aa/x'), ANSWER);
      await assert.rejects(s.put('heads/n.json', Buffer.from('{}')), ANSWER);
      await assert.rejects(s.putStream('blobs/aa/y', () => Readable.from([Buffer.from('abc')]), 3), ANSWER);
      await assert.rejects(async () => {
        for await (const _ of s.list('heads/')) void _;
      }, ANSWER);
      await assert.rejects(s.delete(['journal/n/000000000001']), ANSWER);
    } finally {
      await s.close();
    }
  });

  it('init, run and doctor exit non-zero with that one line, and nothing is recorded as published', async (t) => {
    const dir = tempDir(t);
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'webroot' }], store: 's3://wp-sync/prod', storeExtra: `endpoint = "${endpoint}"\nforce_path_style = true\nregion = "us-east-1"` });
    const env = { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_MAX_ATTEMPTS: '1' };
    // Not spawnSync: this process must keep serving the endpoint meanwhile.
    const fedsync = (args: string[]) => fedsyncAsync(['-c', node.config, ...args], env);
    const init = await fedsync(['init']);
    assert.notEqual(init.code, 0, `init must fail:\n${init.stdout}${init.stderr}`);
    assert.match(init.stderr, ANSWER);
    assert.doesNotMatch(init.stdout + init.stderr, /format\.json written|new federation/);
    const run = await fedsync(['run']);
    assert.notEqual(run.code, 0, `run must fail:\n${run.stdout}${run.stderr}`);
    assert.doesNotMatch(run.stdout + run.stderr, /published [1-9]/);
    const doctor = await fedsync(['doctor']);
    assert.notEqual(doctor.code, 0, `doctor must fail:\n${doctor.stdout}`);
    assert.match(doctor.stdout + doctor.stderr, ANSWER);
  });
});
