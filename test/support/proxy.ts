// A counting, fault-injecting HTTP reverse proxy to put between an S3 client and an S3 server
// in tests and benchmarks, so they can assert how many requests of each kind fedsync made
// (an idle cycle must cost one listing) and how it copes when the store misbehaves.
//
// Requests and responses are streamed through unchanged, Host header included: a SigV4 client
// signs the Host it connects to (the proxy's host:port), so rewriting Host would break every
// signature. RGW (no rgw_dns_name) and s3rver (IP hosts mean path-style) accept a Host that
// is not their own. Only hop-by-hop headers (Connection, Keep-Alive, ...) are dropped, because
// each side keeps its own connections alive. Requests are classified assuming path-style
// addressing (forcePathStyle), which is how fedsync and the tests talk to test servers.
//
// Standalone, for benchmarks running in other processes:
//   node --import tsx test/support/proxy.ts --upstream http://127.0.0.1:8000 [--port N]
// prints the proxy's endpoint on stdout; GET /__proxy/counts and GET /__proxy/log return JSON,
// POST /__proxy/reset clears both. ("__proxy" cannot clash with a bucket: S3 bucket names
// have no underscores.)
import { once } from 'node:events';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export type RequestKind = 'list' | 'get' | 'head' | 'put' | 'post' | 'delete' | 'other';
export type Counts = Record<RequestKind | 'total', number>;

/** What a fault hook sees of one request. */
export interface ProxyRequest {
  /** 1 for the first request since start or reset(), and so on. */
  seq: number;
  method: string;
  /** As sent: percent-encoded, without the query string. */
  path: string;
  /** Decoded query parameters; a bare `?uploads` is `{ uploads: '' }`. */
  query: Record<string, string>;
  kind: RequestKind;
  /** Decoded, from the path-style URL; undefined for service-level requests (ListBuckets). */
  bucket?: string;
  /** Decoded; undefined for bucket-level requests. */
  key?: string;
  headers: IncomingHttpHeaders;
}

/** One line of the request log. */
export interface RequestRecord extends ProxyRequest {
  /** The status the client got; null while pending, or when it got no response (reset). */
  status: number | null;
  /** The fault injected into this request, if any. */
  fault?: Fault['action'];
}

/**
 * What to do with one request. Every fault may first wait `delayMs` (a slow store).
 * - pass: forward it (with `delayMs`, that is the "delay" fault);
 * - error: answer `status` with an S3 XML error body (`code` defaults by status, e.g.
 *   503 SlowDown) without forwarding;
 * - reset: when 'request' (default), reset the client's connection without forwarding, while
 *   an upload may still be sending its body; when 'response', forward it and reset instead of
 *   answering, so the store applied a change that the client never heard about;
 * - truncate: forward it, send the response headers and the first `bytes` bytes of the body,
 *   then close the connection (a body no longer than `bytes` arrives whole: no fault).
 */
export type Fault =
  | { action: 'pass'; delayMs?: number }
  | {
      action: 'error';
      status: number;
      code?: string;
      message?: string;
      headers?: Record<string, string>;
      delayMs?: number;
    }
  | { action: 'reset'; when?: 'request' | 'response'; delayMs?: number }
  | { action: 'truncate'; bytes: number; delayMs?: number };

/** Decides per request; undefined means pass. Called in arrival order, before forwarding. */
export type FaultHook = (req: ProxyRequest) => Fault | undefined | Promise<Fault | undefined>;

export interface ProxyOptions {
  /** The S3 server, e.g. http://127.0.0.1:8000. */
  upstream: string;
  /** Port on 127.0.0.1; default 0, a free one. */
  port?: number;
  fault?: FaultHook;
}

export interface Proxy {
  /** http://127.0.0.1:PORT, to give the S3 client instead of the upstream. */
  endpoint: string;
  counts(): Counts;
  /** Every request since start or reset(), in arrival order. Live records: do not modify. */
  log(): readonly RequestRecord[];
  /** Clears counts and log; the fault hook stays. */
  reset(): void;
  /** Replaces the fault hook; undefined passes everything. */
  setFault(hook: FaultHook | undefined): void;
  stop(): Promise<void>;
}

// Query parameters of ListObjects (v1 and v2); a bucket GET with anything else is some other
// bucket operation (?location, ?versioning, ?uploads, ...). The SDK adds x-id to some requests.
const LIST_PARAMS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'marker',
  'max-keys',
  'encoding-type',
  'continuation-token',
  'start-after',
  'fetch-owner',
  'x-id',
]);
// Sub-resources that turn an object request into something other than reading or writing data.
const OBJECT_SUBRESOURCES = ['acl', 'tagging', 'attributes', 'legal-hold', 'retention', 'torrent', 'restore', 'select'];

/** The S3 operation kind of a path-style request. Exported for its unit test. */
export function classify(
  method: string,
  bucket: string | undefined,
  key: string | undefined,
  query: Record<string, string>,
): RequestKind {
  if (method === 'HEAD') return 'head';
  if (bucket === undefined) return 'other';
  if (key === undefined) {
    if (method === 'GET') return Object.keys(query).every((p) => LIST_PARAMS.has(p)) ? 'list' : 'other';
    if (method === 'POST' && 'delete' in query) return 'delete'; // DeleteObjects: one request, many keys
    return 'other';
  }
  if (OBJECT_SUBRESOURCES.some((p) => p in query)) return 'other';
  switch (method) {
    case 'GET':
      return 'uploadId' in query ? 'other' : 'get'; // ListParts
    case 'PUT':
      return 'put'; // PutObject, UploadPart, CopyObject
    case 'POST':
      return 'post'; // CreateMultipartUpload, CompleteMultipartUpload
    case 'DELETE':
      return 'uploadId' in query ? 'other' : 'delete'; // AbortMultipartUpload is not a deletion
    default:
      return 'other';
  }
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function describe(req: IncomingMessage, seq: number): Omit<ProxyRequest, 'headers'> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  // Not new URL(): it would resolve `.`/`..` segments, which are legal in S3 keys.
  const path = q < 0 ? url : url.slice(0, q);
  const query = Object.fromEntries(new URLSearchParams(q < 0 ? '' : url.slice(q + 1)));
  const slash = path.indexOf('/', 1);
  const bucketPart = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const keyPart = slash < 0 ? '' : path.slice(slash + 1);
  const bucket = bucketPart ? decode(bucketPart) : undefined;
  const key = bucket !== undefined && keyPart ? decode(keyPart) : undefined;
  const method = req.method ?? 'GET';
  return { seq, method, path, query, kind: classify(method, bucket, key, query), bucket, key };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

/** rawHeaders without hop-by-hop headers, in their original case and order. */
function endToEnd(raw: string[]): string[] {
  const named = new Set(HOP_BY_HOP);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === 'connection') {
      for (const token of raw[i + 1].split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!named.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

const DEFAULT_CODES: Record<number, string> = {
  400: 'BadRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  409: 'OperationAborted',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'SlowDown',
};

function errorBody(code: string, message: string, seq: number): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message>` +
    `<RequestId>fedsync-proxy-${seq}</RequestId></Error>`
  );
}

function zeroCounts(): Counts {
  return { list: 0, get: 0, head: 0, put: 0, post: 0, delete: 0, other: 0, total: 0 };
}

export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new Error(`proxy: only http upstreams, not ${options.upstream}`);
  // keepAlive: reuse upstream connections like a real client would. timeout: drop idle ones
  // before the upstream does (s3rver after 5 s), so a request never lands on a socket the
  // server is closing, which would surface as a spurious 502.
  const agent = new Agent({ keepAlive: true, timeout: 4000 });
  let hook = options.fault;
  let counts = zeroCounts();
  let records: RequestRecord[] = [];

  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    if (req.url?.startsWith('/__proxy/')) return control(req, res);
    const described = describe(req, records.length + 1);
    counts[described.kind]++;
    counts.total++;
    const record: RequestRecord = { ...described, headers: req.headers, status: null };
    records.push(record);
    const info: ProxyRequest = { ...described, headers: req.headers };
    handle(req, res, info, record).catch((err: unknown) => {
      // A bug in the proxy or the hook: make it loud in the test, not a hang.
      console.error('proxy:', err);
      if (!res.headersSent) {
        record.status = 500;
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`proxy: ${String(err)}`);
      } else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, info: ProxyRequest, record: RequestRecord) {
    const fault: Fault = (await hook?.(info)) ?? { action: 'pass' };
    if (fault.action !== 'pass') record.fault = fault.action;
    if (fault.delayMs) await sleep(fault.delayMs);
    if (fault.action === 'error') {
      const code = fault.code ?? DEFAULT_CODES[fault.status] ?? 'InjectedFault';
      const body = errorBody(code, fault.message ?? `injected by the test proxy`, info.seq);
      record.status = fault.status;
      req.resume(); // discard any upload, so the connection stays usable
      res.writeHead(fault.status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        ...fault.headers,
      });
      res.end(body);
      return;
    }
    if (fault.action === 'reset' && fault.when !== 'response') {
      req.socket.resetAndDestroy();
      return;
    }
    forward(req, res, record, fault);
  }

  function forward(req: IncomingMessage, res: ServerResponse, record: RequestRecord, fault: Fault) {
    const up = httpRequest({
      host: upstream.hostname,
      port: upstream.port || 80,
      method: req.method,
      path: req.url,
      headers: endToEnd(req.rawHeaders),
      agent,
    });
    req.pipe(up);
    // The client went away (or a fault closed its connection): abandon the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.on('error', (err) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      record.status = 502;
      req.resume();
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy: upstream failed: ${err.message}`);
    });
    up.on('response', (upRes) => {
      if (fault.action === 'reset') {
        // The store has acted; the client never learns the outcome.
        upRes.resume();
        upRes.on('end', () => req.socket.resetAndDestroy());
        return;
      }
      const status = upRes.statusCode ?? 502;
      record.status = status;
      res.writeHead(status, upRes.statusMessage, endToEnd(upRes.rawHeaders));
      if (fault.action === 'truncate') {
        sendTruncated(upRes, res, fault.bytes).catch(() => res.destroy());
        return;
      }
      upRes.on('error', () => res.destroy());
      upRes.pipe(res);
    });
  }

  /** Sends the first `bytes` bytes of the body, lets them reach the client, then closes. */
  async function sendTruncated(from: IncomingMessage, to: ServerResponse, bytes: number) {
    let left = bytes;
    for await (const chunk of from as AsyncIterable<Buffer>) {
      if (left === 0) break; // stops reading; the upstream socket is discarded with it
      const part = chunk.subarray(0, left);
      left -= part.length;
      if (!to.write(part)) await once(to, 'drain');
    }
    // end() on the socket (not on the response) flushes what was written, then sends FIN with
    // the body incomplete: the client sees a premature close rather than a valid response.
    to.socket?.end();
  }

  function control(req: IncomingMessage, res: ServerResponse) {
    const json = (value: unknown) => {
      const body = JSON.stringify(value);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    };
    req.resume();
    if (req.method === 'GET' && req.url === '/__proxy/counts') return json(counts);
    if (req.method === 'GET' && req.url === '/__proxy/log') return json(records.map(({ headers: _h, ...r }) => r)); // headers hold signatures
    if (req.method === 'POST' && req.url === '/__proxy/reset') {
      reset();
      res.writeHead(204).end();
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown proxy control request\n');
  }

  function reset() {
    counts = zeroCounts();
    records = [];
  }

  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    log: () => records,
    reset,
    setFault: (h) => {
      hook = h;
    },
    stop: async () => {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

async function main() {
  const { values } = parseArgs({
    options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } },
  });
  if (!values.upstream) {
    console.error('usage: node --import tsx test/support/proxy.ts --upstream URL [--port N]');
    process.exit(2);
  }
  const proxy = await startProxy({ upstream: values.upstream, port: Number(values.port) });
  console.log(proxy.endpoint);
  const stop = () => void proxy.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
