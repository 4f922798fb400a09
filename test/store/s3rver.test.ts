// The conformance suite and the S3 specifics against s3rver, started in a child process for
// this file. s3rver is a fake with known defects (see ServerQuirks); RGW is the real check.
import { after } from 'node:test';
import { S3Store } from '../../src/store/s3/s3.js';
import { createBucket, freshBucketName } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';
import { storeConformance } from './conformance.js';
import { s3Specifics } from './s3-specifics.js';

const server = await startS3rver();
after(() => server.stop());

storeConformance(
  's3rver',
  async (opts) => {
    const bucket = freshBucketName();
    await createBucket(server, bucket);
    // A prefix two levels deep, as a real deployment has (`<store prefix>/<set>`).
    return new S3Store(
      { bucket, prefix: 'fedsync/webroot', endpoint: server.endpoint, region: server.region, forcePathStyle: true },
      { credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }, ...opts },
    );
  },
  { listsDirectoryOrder: true, abortedPutTruncates: true, ignoresConditions: true },
);
s3Specifics(server, { noMultipartAbort: true });
