// An s3rver for tests, in a child process: on Node 20 its continuation tokens (DES) need
// `--openssl-legacy-provider`, which must not leak into the test process itself; a child
// also keeps s3rver's synchronous file I/O off the test's event loop.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { S3Target } from './s3.js';

const CHILD = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));

export async function startS3rver(): Promise<S3Target & { stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedsync-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, dir], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => {
        lines.close();
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch {
          reject(new Error(`s3rver printed ${JSON.stringify(line)}`));
        }
      });
      child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr.trim()}`)));
      setTimeout(() => reject(new Error(`s3rver did not start within 20 s: ${stderr.trim()}`)), 20_000).unref();
    });
    const endpoint = `http://127.0.0.1:${port}`;
    await waitAnswering(endpoint);
    return { name: 's3rver', endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1', stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once the endpoint answers HTTP at all (s3rver lists buckets for any caller). */
async function waitAnswering(endpoint: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request(endpoint, { method: 'GET', timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`s3rver at ${endpoint} does not answer`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
