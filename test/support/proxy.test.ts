// The test proxy: classification, transparency (SigV4 still verifies, bodies stream through
// unchanged, connections are reused), fault injection, and the standalone mode. The S3 part
// runs against s3rver always and against RGW when test/support/rgw.sh's exports are set.
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent, createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { classify, startProxy, type Proxy, type RequestKind } from './proxy.js';
import { freshBucketName, rgwTargetFromEnv, type S3Target } from './s3.js';
import { startS3rver } from './s3rver.js';

function clientFor(target: S3Target, endpoint: string, maxAttempts = 3): S3Client {
  return new S3Client({
    endpoint,
    region: target.region,
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('classify', () => {
  const cases: [string, string, RequestKind][] = [
    ['GET', '/', 'other'], // ListBuckets
    ['GET', '/b', 'list'],
    ['GET', '/b/', 'list'],
    ['GET', '/b?list-type=2&prefix=p%2F&delimiter=%2F&x-id=ListObjectsV2', 'list'],
    ['GET', '/b?prefix=p&marker=m', 'list'],
    ['GET', '/b?location', 'other'],
    ['GET', '/b?uploads', 'other'],
    ['GET', '/b/k?x-id=GetObject', 'get'],
    ['GET', '/b/dir/k?partNumber=1', 'get'],
    ['GET', '/b/k?uploadId=u', 'other'], // ListParts
    ['GET', '/b/k?tagging', 'other'],
    ['HEAD', '/b', 'head'],
    ['HEAD', '/b/k', 'head'],
    ['PUT', '/b', 'other'], // CreateBucket
    ['PUT', '/b/k', 'put'],
    ['PUT', '/b/k?partNumber=2&uploadId=u', 'put'],
    ['PUT', '/b/k?acl', 'other'],
    ['POST', '/b/k?uploads', 'post'],
    ['POST', '/b/k?uploadId=u', 'post'],
    ['POST', '/b?delete', 'delete'],
    ['DELETE', '/b/k', 'delete'],
    ['DELETE', '/b/k?uploadId=u', 'other'], // AbortMultipartUpload
    ['DELETE', '/b', 'other'], // DeleteBucket
  ];
  for (const [method, url, kind] of cases) {
    it(`${method} ${url} is ${kind}`, () => {
      const [path, qs = ''] = url.split('?');
      const [, bucket, ...rest] = path.split('/');
      const key = rest.join('/') || undefined;
      assert.equal(classify(method, bucket || undefined, key, Object.fromEntries(new URLSearchParams(qs))), kind);
    });
  }
});

describe('proxy transparency (plain HTTP upstream)', () => {
  let upstream: ReturnType<typeof createServer>;
  let upstreamConnections = 0;
  let seen: IncomingHttpHeaders[] = [];
  let proxy: Proxy;

  before(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.headers);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(200, { 'x-body-sha256': sha256(body), 'content-length': body.length });
        res.end(body);
      });
    });
    upstream.on('connection', () => upstreamConnections++);
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    proxy = await startProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
  });
  after(async () => {
    await proxy.stop();
    upstream.close();
  });

  function send(agent: Agent, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = request(`${proxy.endpoint}/b/k`, { method: 'PUT', agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      // Several writes: the body goes out chunked, and must arrive whole.
      for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
      req.end();
    });
  }

  it('keeps the Host the client used, streams bodies unchanged and reuses connections', async () => {
    seen = [];
    upstreamConnections = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const body = randomBytes(1 << 20);
    for (let i = 0; i < 5; i++) {
      const res = await send(agent, body);
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-body-sha256'], sha256(body));
      assert.equal(sha256(res.body), sha256(body));
    }
    agent.destroy();
    assert.equal(seen.length, 5);
    assert.equal(seen[0].host, new URL(proxy.endpoint).host);
    assert.equal(seen[0]['transfer-encoding'], 'chunked');
    assert.equal(upstreamConnections, 1, 'the proxy reuses its upstream connection');
  });
});

/** Signed S3 traffic through the proxy to one kind of server. */
function s3Suite(name: string, start: () => Promise<{ target: S3Target; stop(): Promise<void> }>) {
  describe(`proxy in front of ${name}`, () => {
    let target: S3Target;
    let stopTarget: () => Promise<void>;
    let proxy: Proxy;
    let s3: S3Client;
    let noRetry: S3Client; // no retries: sees each injected fault
    const Bucket = freshBucketName('proxy');

    before(async () => {
      ({ target, stop: stopTarget } = await start());
      proxy = await startProxy({ upstream: target.endpoint });
      s3 = clientFor(target, proxy.endpoint);
      noRetry = clientFor(target, proxy.endpoint, 1);
      await s3.send(new CreateBucketCommand({ Bucket }));
    });
    after(async () => {
      s3?.destroy();
      noRetry?.destroy();
      await proxy?.stop();
      await stopTarget?.();
    });
    beforeEach(() => {
      proxy.setFault(undefined);
      proxy.reset();
    });

    it('forwards signed requests and counts them by kind', async () => {
      await s3.send(new PutObjectCommand({ Bucket, Key: 'a/one.txt', Body: 'one' }));
      // A stream body of known length: the SDK sends it as is (no aws-chunked framing).
      await s3.send(
        new PutObjectCommand({ Bucket, Key: 'a/two.txt', Body: Readable.from([Buffer.from('tw'), Buffer.from('o')]), ContentLength: 3 }),
      );
      const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'a/two.txt' }));
      assert.equal(await got.Body?.transformToString(), 'two');
      const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'a/one.txt' }));
      assert.equal(head.ContentLength, 3);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'a/' }));
      assert.deepEqual(listed.Contents?.map((o) => o.Key), ['a/one.txt', 'a/two.txt']);
      await s3.send(new DeleteObjectCommand({ Bucket, Key: 'a/one.txt' }));
      await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'a/two.txt' }] } }));
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: 'a/one.txt' })), { name: 'NotFound' });

      assert.deepEqual(proxy.counts(), { list: 1, get: 1, head: 2, put: 2, post: 0, delete: 2, other: 0, total: 8 });
      const log = proxy.log();
      assert.deepEqual(
        log.map((r) => [r.method, r.kind, r.key ?? null, r.status]),
        [
          ['PUT', 'put', 'a/one.txt', 200],
          ['PUT', 'put', 'a/two.txt', 200],
          ['GET', 'get', 'a/two.txt', 200],
          ['HEAD', 'head', 'a/one.txt', 200],
          ['GET', 'list', null, 200],
          ['DELETE', 'delete', 'a/one.txt', 204],
          ['POST', 'delete', null, 200],
          ['HEAD', 'head', 'a/one.txt', 404],
        ],
      );
      assert.equal(log[4].query['list-type'], '2');
      assert.equal(log[4].query.prefix, 'a/');
      assert.equal(log[0].path, `/${Bucket}/a/one.txt`);
    });

    it('passes a multipart upload through byte for byte', async () => {
      const Key = 'big/file.bin';
      const part = randomBytes(5 << 20); // the minimum size of all but the last part
      const tail = randomBytes(123_456);
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      const p1 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: part }));
      const p2 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: tail }));
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] },
        }),
      );
      const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
      assert.equal(sha256(await got.Body!.transformToByteArray()), sha256(Buffer.concat([part, tail])));
      assert.deepEqual(proxy.counts(), { list: 0, get: 1, head: 0, put: 2, post: 2, delete: 0, other: 0, total: 5 });
    });

    it('injects S3 errors, and lets the SDK retry them', async () => {
      proxy.setFault((r) => (r.kind === 'put' ? { action: 'error', status: 503 } : undefined));
      await assert.rejects(noRetry.send(new PutObjectCommand({ Bucket, Key: 'e/x', Body: 'x' })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(err.name, 'SlowDown');
        assert.equal(err.$metadata?.httpStatusCode, 503);
        return true;
      });
      assert.deepEqual(
        proxy.log().map((r) => [r.kind, r.status, r.fault]),
        [['put', 503, 'error']],
      );

      proxy.reset();
      let failures = 1;
      proxy.setFault((r) => (r.kind === 'put' && failures-- > 0 ? { action: 'error', status: 500 } : undefined));
      await s3.send(new PutObjectCommand({ Bucket, Key: 'e/x', Body: 'x' }));
      assert.deepEqual(proxy.log().map((r) => r.status), [500, 200]);
    });

    it('resets connections before or after the store acted', async () => {
      proxy.setFault((r) => (r.kind === 'put' ? { action: 'reset' } : undefined));
      await assert.rejects(noRetry.send(new PutObjectCommand({ Bucket, Key: 'r/before', Body: randomBytes(256 << 10) })));
      proxy.setFault((r) => (r.kind === 'put' ? { action: 'reset', when: 'response' } : undefined));
      await assert.rejects(noRetry.send(new PutObjectCommand({ Bucket, Key: 'r/after', Body: 'after' })));
      proxy.setFault(undefined);

      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: 'r/before' })), { name: 'NotFound' });
      const after = await s3.send(new GetObjectCommand({ Bucket, Key: 'r/after' }));
      assert.equal(await after.Body?.transformToString(), 'after');
      assert.deepEqual(
        proxy.log().map((r) => [r.kind, r.status, r.fault]),
        [
          ['put', null, 'reset'],
          ['put', null, 'reset'],
          ['head', 404, undefined],
          ['get', 200, undefined],
        ],
      );
    });

    it('delays requests', async () => {
      await s3.send(new PutObjectCommand({ Bucket, Key: 'd/x', Body: 'x' }));
      proxy.setFault((r) => (r.kind === 'get' ? { action: 'pass', delayMs: 300 } : undefined));
      const t0 = performance.now();
      const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'd/x' }));
      assert.equal(await got.Body?.transformToString(), 'x');
      assert.ok(performance.now() - t0 >= 300, 'the GET took at least the delay');
    });

    it('truncates response bodies', async () => {
      const body = randomBytes(256 << 10);
      await s3.send(new PutObjectCommand({ Bucket, Key: 't/x', Body: body }));
      proxy.setFault((r) => (r.kind === 'get' ? { action: 'truncate', bytes: 1000 } : undefined));
      await assert.rejects(async () => {
        const got = await noRetry.send(new GetObjectCommand({ Bucket, Key: 't/x' }));
        await got.Body!.transformToByteArray();
      });
      assert.deepEqual(
        proxy.log().slice(-1).map((r) => [r.kind, r.status, r.fault]),
        [['get', 200, 'truncate']],
      );
    });
  });
}

s3Suite('s3rver', async () => {
  const server = await startS3rver();
  return { target: server, stop: () => server.stop() };
});

const rgw = rgwTargetFromEnv();
if (rgw) {
  s3Suite('rgw', async () => ({ target: rgw, stop: async () => {} }));
} else if (process.env.FEDSYNC_REQUIRE_RGW === '1') {
  it('RGW is available', () => assert.fail('FEDSYNC_REQUIRE_RGW=1 but FEDSYNC_TEST_RGW_* are not set (see test/support/rgw.sh)'));
} else {
  it('proxy in front of rgw', { skip: 'FEDSYNC_TEST_RGW_ENDPOINT not set (eval "$(bash test/support/rgw.sh start DIR)")' }, () => {});
}

describe('standalone proxy', () => {
  it('prints its endpoint and serves counts, log and reset', async () => {
    const upstream = createServer((_req, res) => res.writeHead(200, { 'content-length': 0 }).end());
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const script = fileURLToPath(new URL('./proxy.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', script, '--upstream', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [endpoint] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      const call = async (method: string, path: string) => {
        const res = await fetch(`${endpoint}${path}`, { method });
        return { status: res.status, text: await res.text() };
      };
      assert.equal((await call('GET', '/bucket/key')).status, 200);
      assert.equal((await call('GET', '/bucket?list-type=2')).status, 200);
      const counts = JSON.parse((await call('GET', '/__proxy/counts')).text);
      assert.deepEqual(counts, { list: 1, get: 1, head: 0, put: 0, post: 0, delete: 0, other: 0, total: 2 });
      const log = JSON.parse((await call('GET', '/__proxy/log')).text);
      assert.deepEqual(log[1], { seq: 2, method: 'GET', path: '/bucket', query: { 'list-type': '2' }, kind: 'list', bucket: 'bucket', status: 200 });
      assert.equal((await call('POST', '/__proxy/reset')).status, 204);
      assert.equal(JSON.parse((await call('GET', '/__proxy/counts')).text).total, 0);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      upstream.close();
    }
  });
});
