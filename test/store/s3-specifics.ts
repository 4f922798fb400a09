// S3 behaviour beyond the Store contract: retries (through the fault proxy of
// ../support/proxy.ts), the DeleteObjects checksum header, multipart clean-up, error
// messages. Registered for every S3-compatible test server.
import assert from 'node:assert/strict';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { StoreError } from '../../src/store/errors.js';
import { S3Store, type S3StoreOptions } from '../../src/store/s3/s3.js';
import { createBucket, freshBucketName, testClient, type S3Target } from '../support/s3.js';
import { startProxy, type Proxy } from '../support/proxy.js';

const MiB = 1024 * 1024;
/** A body cut short mid-way: the headers and its first 64 KiB, then the connection drops. */
const CUT_BODY = { action: 'truncate', bytes: 64 * 1024 } as const;

export interface S3Quirks {
  /** AbortMultipartUpload and ListMultipartUploads are not implemented (s3rver: 405/501). */
  noMultipartAbort?: boolean;
}

export function s3Specifics(t: S3Target, quirks: S3Quirks = {}): void {
  const needsAbort = quirks.noMultipartAbort ? `${t.name} cannot abort multipart uploads` : false;
  const creds = { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey };

  /** A store on a fresh bucket, reached through a fault proxy. */
  const viaProxy = (opts: S3StoreOptions, fn: (s: S3Store, p: Proxy, bucket: string) => Promise<void>) => async () => {
    const bucket = freshBucketName();
    await createBucket(t, bucket);
    const proxy = await startProxy({ upstream: t.endpoint });
    const store = new S3Store(
      { bucket, prefix: 'p', endpoint: proxy.endpoint, region: t.region, forcePathStyle: true },
      { credentials: creds, retryBaseMs: 10, ...opts },
    );
    try {
      await fn(store, proxy, bucket);
    } finally {
      await store.close();
      await proxy.stop();
    }
  };

  const pendingUploads = async (bucket: string) => {
    const c = testClient(t);
    try {
      return (await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    } finally {
      c.destroy();
    }
  };

  describe(`S3Store specifics: ${t.name}`, { concurrency: false }, () => {
    test('DeleteObjects sends Content-MD5 instead of a CRC32 checksum', viaProxy({}, async (s, p) => {
      // Behave like Ceph RGW 16: refuse a DeleteObjects without Content-MD5.
      p.setFault((r) => (r.method === 'POST' && 'delete' in r.query && !r.headers['content-md5']
        ? { action: 'error', status: 400, code: 'InvalidRequest' } : undefined));
      await s.put('a', Buffer.from('1'));
      await s.put('b', Buffer.from('2'));
      await s.delete(['a', 'b', 'missing']);
      const del = p.log().filter((r) => r.method === 'POST' && 'delete' in r.query);
      // Usually one request; s3rver sometimes answers 500 when a delete empties a directory.
      assert.ok(del.length >= 1);
      for (const r of del) {
        assert.ok(r.headers['content-md5']);
        assert.equal(r.headers['x-amz-checksum-crc32'], undefined);
      }
      assert.equal(await s.get('a'), null);
    }));

    test('putStream reopens the body when the PUT fails', viaProxy({}, async (s, p) => {
      let failures = 1;
      p.setFault((r) => (r.method === 'PUT' && failures-- > 0 ? { action: 'error', status: 503 } : undefined));
      let opened = 0;
      await s.putStream('blob', () => (opened++, Readable.from([Buffer.from('hello')])), 5);
      assert.equal(opened, 2);
      assert.equal(s.requests.put, 2, 'both attempts counted');
      assert.equal((await s.get('blob'))?.toString(), 'hello');
    }));

    test('a multipart putStream that fails for good is aborted, then retried from open()', { skip: needsAbort }, viaProxy(
      { multipartThreshold: 1024, maxAttempts: 2 },
      async (s, p, bucket) => {
        // Part 2 fails on both SDK attempts of the first round; the second round goes through.
        let failures = 2;
        p.setFault((r) => (r.method === 'PUT' && r.query.partNumber === '2' && failures-- > 0
          ? { action: 'error', status: 500 } : undefined));
        const body = Buffer.alloc(11 * MiB, 7);
        let opened = 0;
        await s.putStream('large', () => (opened++, Readable.from([body.subarray(0, 6 * MiB), body.subarray(6 * MiB)])), body.length);
        assert.equal(opened, 2);
        assert.equal((await s.stat('large'))?.size, body.length);
        assert.ok(p.log().some((r) => r.method === 'DELETE' && 'uploadId' in r.query), 'first upload aborted');
        assert.deepEqual(await pendingUploads(bucket), []);
      },
    ));

    test('a putStream whose stream fails aborts its multipart upload', { skip: needsAbort }, viaProxy({ multipartThreshold: 1024 }, async (s, _p, bucket) => {
      let sent = 0;
      const src = () => new Readable({
        read() {
          if (sent >= 7 * MiB) return void this.destroy(new Error('source failed'));
          sent += MiB;
          this.push(Buffer.alloc(MiB, 1));
        },
      });
      await assert.rejects(s.putStream('x', src, 11 * MiB), /source failed/);
      assert.deepEqual(await pendingUploads(bucket), []);
      assert.equal(await s.stat('x'), null);
    }));

    test('a buffered put is retried by the SDK, every attempt counted', viaProxy({}, async (s, p) => {
      let failures = 2;
      p.setFault((r) => (r.method === 'PUT' && failures-- > 0 ? { action: 'error', status: 500 } : undefined));
      await s.put('k', Buffer.from('v'));
      assert.equal(s.requests.put, 3);
      assert.equal((await s.get('k'))?.toString(), 'v');
    }));

    test('get issues the GET again when the body breaks mid-way', viaProxy({}, async (s, p) => {
      const body = Buffer.alloc(512 * 1024, 'q');
      await s.put('k', body);
      let cuts = 1;
      p.setFault((r) => (r.kind === 'get' && cuts-- > 0 ? CUT_BODY : undefined));
      assert.ok((await s.get('k'))?.equals(body));
      assert.equal(s.requests.get, 2);
    }));

    test('getStream resumes where a broken body stopped', viaProxy({}, async (s, p) => {
      const body = Buffer.from(Array.from({ length: 2 * MiB }, (_, i) => (i * 7) & 0xff));
      await s.put('k', body);
      let cuts = 2;
      p.setFault((r) => (r.kind === 'get' && cuts-- > 0 ? CUT_BODY : undefined));
      const stream = await s.getStream('k');
      assert.ok(stream);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(body));
      assert.equal(s.requests.get, 3);
      const ranged = p.log().filter((r) => r.headers.range);
      assert.equal(ranged.length, 2);
      assert.match(String(ranged[0].headers.range), /^bytes=[1-9]\d*-$/);
    }));

    test('errors name the operation, the key, the cause and a hint', async () => {
      const port = await closedPort();
      const dead = new S3Store(
        { bucket: 'b', prefix: 'set', endpoint: `http://127.0.0.1:${port}` },
        { credentials: creds, maxAttempts: 1 },
      );
      await assert.rejects(dead.put('heads/x.json', Buffer.from('{}')), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.message, `store: put heads/x.json failed: connect ECONNREFUSED 127.0.0.1:${port} (is the endpoint reachable?)`);
        return true;
      });
      await dead.close();

      const noBucket = new S3Store({ bucket: freshBucketName('missing'), prefix: '', endpoint: t.endpoint }, { credentials: creds });
      await assert.rejects(noBucket.get('k'), /store: get k failed: NoSuchBucket.*does the bucket exist/);
      await assert.rejects(noBucket.put('k', Buffer.from('x')), /NoSuchBucket/);
      await noBucket.close();

      const bucket = freshBucketName();
      await createBucket(t, bucket);
      const badKey = new S3Store({ bucket, prefix: '', endpoint: t.endpoint }, { credentials: { accessKeyId: 'nobody', secretAccessKey: 'x' } });
      await assert.rejects(badKey.put('k', Buffer.from('x')), /store: put k failed: InvalidAccessKeyId.*check the access key/);
      await badKey.close();
    });

    test('location names bucket, prefix and endpoint, never credentials', () => {
      const s = new S3Store({ bucket: 'bk', prefix: 'a/b', endpoint: 'http://user:secret@host:9000' }, { credentials: creds });
      assert.equal(s.location, 's3://bk/a/b (endpoint http://host:9000)');
      assert.equal(new S3Store({ bucket: 'bk', prefix: '' }, { credentials: creds }).location, 's3://bk');
    });
  });
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
