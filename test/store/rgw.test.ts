// The conformance suite against a real Ceph RGW, the server CI holds the store layer to.
// Runs when test/support/rgw.sh's FEDSYNC_TEST_RGW_* variables are set; skipped otherwise,
// unless FEDSYNC_REQUIRE_RGW=1 (CI), where a missing RGW is a failure, not a silent skip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { S3Store } from '../../src/store/s3/s3.js';
import { createBucket, freshBucketName, rgwTargetFromEnv } from '../support/s3.js';
import { storeConformance } from './conformance.js';
import { s3Specifics } from './s3-specifics.js';

const target = rgwTargetFromEnv();

if (!target) {
  if (process.env.FEDSYNC_REQUIRE_RGW === '1') {
    test('Ceph RGW is required (FEDSYNC_REQUIRE_RGW=1)', () => {
      assert.fail('FEDSYNC_TEST_RGW_ENDPOINT, FEDSYNC_TEST_RGW_ACCESS_KEY and FEDSYNC_TEST_RGW_SECRET_KEY are not all set: start one with `eval "$(bash test/support/rgw.sh start DIR)"`');
    });
  } else {
    test('Store conformance: rgw', { skip: 'FEDSYNC_TEST_RGW_* not set (eval "$(bash test/support/rgw.sh start DIR)")' }, () => {});
  }
} else {
  const t = target;
  storeConformance('rgw', async (opts) => {
    const bucket = freshBucketName();
    await createBucket(t, bucket);
    return new S3Store(
      { bucket, prefix: 'fedsync/webroot', endpoint: t.endpoint, region: t.region, forcePathStyle: true },
      { credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey }, ...opts },
    );
  });
  s3Specifics(t);
}
