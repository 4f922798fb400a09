import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FileStore, openStore, parseStoreUrl, S3Store, StoreError } from '../../src/store/index.js';

describe('parseStoreUrl', () => {
  test('s3 URLs: bucket and optional prefix', () => {
    assert.deepEqual(parseStoreUrl('s3://bk'), { kind: 's3', bucket: 'bk', prefix: '' });
    assert.deepEqual(parseStoreUrl('s3://bk/'), { kind: 's3', bucket: 'bk', prefix: '' });
    assert.deepEqual(parseStoreUrl('s3://bk/a/b/'), { kind: 's3', bucket: 'bk', prefix: 'a/b' });
  });

  test('file URLs: absolute directories, percent-decoded', () => {
    assert.deepEqual(parseStoreUrl('file:///srv/store'), { kind: 'file', dir: '/srv/store' });
    assert.deepEqual(parseStoreUrl('file:///srv/my%20store/'), { kind: 'file', dir: '/srv/my store' });
    assert.deepEqual(parseStoreUrl('file://localhost/srv'), { kind: 'file', dir: '/srv' });
  });

  test('anything else is refused with a message that says what is accepted', () => {
    for (const bad of [
      '', '/srv/store', 'store', 'http://host/bucket', 'gs://bk', 's3://', 's3://bk//x', 's3://bk/a/../b',
      's3://key:secret@bk/x', 'file://otherhost/srv', 'file:relative',
    ]) {
      assert.throws(() => parseStoreUrl(bad), /invalid store URL.*expected s3:\/\/bucket\[\/prefix\] or file:\/\/\/absolute\/dir/, bad);
    }
  });
});

describe('openStore', () => {
  test('roots the store at <url prefix>/<set>', () => {
    const s3 = openStore({ url: 's3://bk/fedsync', endpoint: 'http://127.0.0.1:9000' }, 'webroot');
    assert.ok(s3 instanceof S3Store);
    assert.equal(s3.location, 's3://bk/fedsync/webroot (endpoint http://127.0.0.1:9000)');
    assert.equal(openStore({ url: 's3://bk' }, 'config').location, 's3://bk/config');
    assert.equal(openStore({ url: 's3://bk/p' }, '').location, 's3://bk/p');
    const file = openStore({ url: 'file:///srv/store' }, 'webroot');
    assert.ok(file instanceof FileStore);
    assert.equal(file.location, 'file:///srv/store/webroot');
    assert.equal(openStore({ url: 'file:///srv/store' }, '').location, 'file:///srv/store');
  });

  test('refuses a set name that is not a plain path', () => {
    assert.throws(() => openStore({ url: 's3://bk' }, '../x'), /invalid key/);
    assert.throws(() => openStore({ url: 'file:///srv' }, 'a//b'), /invalid key/);
  });

  test('StoreError carries op, key and cause', () => {
    const cause = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    const e = new StoreError('list', 'heads/', cause);
    assert.equal(e.message, 'store: list heads/ failed: AccessDenied: Access Denied (HTTP 403) (do the credentials have access to this bucket and prefix?)');
    assert.equal(e.cause, cause);
    assert.equal(e.code, 'AccessDenied');
    // Node 20's happy-eyeballs connect failure: an AggregateError with an empty message.
    const agg = Object.assign(
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:9'), { code: 'ECONNREFUSED' }), Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })], ''),
      { code: 'ECONNREFUSED' },
    );
    assert.equal(
      new StoreError('get', 'k', agg).message,
      'store: get k failed: connect ECONNREFUSED ::1:9; connect ECONNREFUSED 127.0.0.1:9 (is the endpoint reachable?)',
    );
  });
});
