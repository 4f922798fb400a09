// What a test needs to reach one S3-compatible server, wherever it came from (an s3rver child,
// a Ceph RGW started by test/support/rgw.sh), plus bucket helpers.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';

export interface S3Target {
  /** Shown in test names: 's3rver', 'rgw'. */
  name: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** The RGW that test/support/rgw.sh started, from its FEDSYNC_TEST_RGW_* exports, or null. */
export function rgwTargetFromEnv(env: NodeJS.ProcessEnv = process.env): S3Target | null {
  const endpoint = env.FEDSYNC_TEST_RGW_ENDPOINT;
  const accessKeyId = env.FEDSYNC_TEST_RGW_ACCESS_KEY;
  const secretAccessKey = env.FEDSYNC_TEST_RGW_SECRET_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) return null;
  return { name: 'rgw', endpoint, accessKeyId, secretAccessKey, region: 'us-east-1' };
}

/** A client for test set-up and inspection, configured the way S3-SERVERS.md says works. */
export function testClient(target: S3Target): S3Client {
  // As bin/fedsync does: the SDK's notice about future Node versions would bury the output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates the bucket `name`. */
export async function createBucket(target: S3Target, name: string): Promise<void> {
  const client = testClient(target);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}

/** A bucket name no other test uses: `prefix-<random>`, valid for S3 (lowercase, <= 63). */
export function freshBucketName(prefix = 'fedsync-test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}
