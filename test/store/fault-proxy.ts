// A tiny HTTP proxy in front of an S3 server that fails chosen requests, to exercise the
// store's retries without a flaky network. Requests pass through unchanged (SigV4 signs the
// Host header, which the proxy forwards as is).
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
}

/** What to do with one request: pass it on, answer an S3 error, or cut the response body. */
export type Fault = 'pass' | 'cut-body' | { status: number; code: string };

export interface FaultProxy {
  endpoint: string;
  seen: SeenRequest[];
  rule: (req: SeenRequest) => Fault;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const up = new URL(upstream);
  const proxy: FaultProxy = { endpoint: '', seen: [], rule: () => 'pass', close: async () => {} };
  const server: Server = createServer((req, res) => {
    const seen = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    proxy.seen.push(seen);
    const fault = proxy.rule(seen);
    if (typeof fault === 'object') {
      // Read the whole body first, as a server would before answering.
      req.resume();
      req.on('end', () => {
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`;
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
        res.end(xml);
      });
      return;
    }
    const fwd = request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (fault !== 'cut-body') return void upRes.pipe(res);
        // Half of the first chunk, then the connection drops: a body cut short mid-way.
        upRes.once('data', (chunk: Buffer) => {
          res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)), () => res.socket?.destroy());
          upRes.destroy();
        });
      },
    );
    fwd.on('error', () => res.socket?.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return proxy;
}
