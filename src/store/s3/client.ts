import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { RequestCounts } from '../store.js';

export interface ClientOptions {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** Explicit credentials (tests); otherwise the standard AWS chain (env, profile, role). */
  credentials?: S3ClientConfig['credentials'];
  /** Attempts per request, first included, for the SDK's own retries. */
  maxAttempts?: number;
  /** Incremented once per HTTP request sent, retries included. */
  counts: RequestCounts;
}

/** Which counter each command moves. Multipart steps count as puts, abort included. */
const KIND: Record<string, keyof RequestCounts> = {
  GetObjectCommand: 'get',
  HeadObjectCommand: 'head',
  ListObjectsV2Command: 'list',
  DeleteObjectsCommand: 'delete',
  DeleteObjectCommand: 'delete',
  PutObjectCommand: 'put',
  CreateMultipartUploadCommand: 'put',
  UploadPartCommand: 'put',
  CompleteMultipartUploadCommand: 'put',
  AbortMultipartUploadCommand: 'put',
};

// The SDK logs "non-retryable streaming request" warnings to the console unless given a
// logger; our own retry loop handles streamed bodies, so the warning is noise.
const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {} };

export function makeClient(o: ClientOptions): S3Client {
  const agent = { keepAlive: true, maxSockets: 32 };
  const client = new S3Client({
    region: o.region || 'us-east-1',
    endpoint: o.endpoint,
    // Custom endpoints (RGW, MinIO, an IP address) rarely have wildcard DNS for virtual hosts.
    forcePathStyle: o.forcePathStyle ?? Boolean(o.endpoint),
    credentials: o.credentials,
    maxAttempts: o.maxAttempts ?? 6,
    // The defaults send stream bodies aws-chunked with a trailing CRC32: RGW answers 411 and
    // s3rver stores the framing bytes inside the object. Only checksum when S3 demands it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An options object makes the SDK build its NodeHttpHandler around our keep-alive agents.
    requestHandler: {
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
      connectionTimeout: 10_000,
      // No whole-request timeout (a large part may take minutes); an idle socket fails.
      socketTimeout: 120_000,
    },
    logger: quiet,
  });

  // Per attempt: the retry middleware sits above (finalizeRequest, high), so this low
  // finalizeRequest entry runs once for every HTTP request actually sent.
  client.middlewareStack.add(
    (next, context) => (args) => {
      const kind = KIND[context.commandName ?? ''];
      if (kind) o.counts[kind]++;
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'fedsyncCountRequests' },
  );

  // DeleteObjects must carry a body checksum. The SDK now sends x-amz-checksum-crc32, which
  // Ceph RGW 16 and other S3-compatible servers reject ("Missing required header for this
  // request: Content-MD5"). Content-MD5 is what every server, AWS included, accepts.
  client.middlewareStack.add(
    (next, context) => (args) => {
      const req = args.request as { headers?: Record<string, string>; body?: unknown };
      if (context.commandName === 'DeleteObjectsCommand' && req.headers && isBytes(req.body)) {
        for (const h of Object.keys(req.headers)) {
          const l = h.toLowerCase();
          if (l.startsWith('x-amz-checksum-') || l === 'x-amz-sdk-checksum-algorithm') delete req.headers[h];
        }
        req.headers['content-md5'] = createHash('md5').update(req.body).digest('base64');
      }
      return next(args);
    },
    // Build step, low priority: after the SDK's checksum middleware has added its headers.
    { step: 'build', priority: 'low', name: 'fedsyncDeleteContentMd5' },
  );
  return client;
}

function isBytes(body: unknown): body is string | Uint8Array {
  return typeof body === 'string' || body instanceof Uint8Array;
}
