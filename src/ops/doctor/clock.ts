import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { StoreConfig } from '../../config/types.js';
import { errorCode } from '../../store/errors.js';
import { parseStoreUrl } from '../../store/index.js';
import { fail, ok, skip, warn, type CheckResult } from './check.js';

/** Skew that is worth fixing, and skew that breaks things (S3 refuses requests past 15 min). */
const WARN_MS = 5_000;
const FAIL_MS = 30_000;

/** Where to ask for the time: the configured endpoint, else the bucket's AWS region endpoint. */
export function clockUrl(store: StoreConfig): string | null {
  if (parseStoreUrl(store.url).kind !== 's3') return null;
  return store.endpoint ?? `https://s3.${store.region || 'us-east-1'}.amazonaws.com/`;
}

/**
 * Compares this node's clock with the store's, from the Date header of one unsigned HEAD
 * (any answer carries it, a 403 included). HLCs order changes by wall time, so a node whose
 * clock runs ahead wins concurrent edits it should lose, and S3 refuses skewed signatures.
 */
export async function clockSkew(store: StoreConfig): Promise<CheckResult> {
  const url = clockUrl(store);
  if (!url) return skip('file:// store: no server clock to compare with');
  let answer: { date: string | undefined; sent: number; received: number };
  try {
    answer = await headDate(url);
  } catch (err) {
    return warn(`could not ask ${url} for its time: ${(err as Error).message}`, 'see the store check');
  }
  if (!answer.date || Number.isNaN(Date.parse(answer.date))) return warn(`${url} sent no usable Date header`);
  // Date has one-second resolution and is truncated: the server's time is half a second on.
  const server = Date.parse(answer.date) + 500;
  const skew = Math.round(((answer.sent + answer.received) / 2 - server) / 1000);
  const text = `this node's clock is ${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} ${new URL(url).host}`;
  const fix = 'keep the clock synchronised: `apt-get install chrony` (or enable systemd-timesyncd)';
  if (Math.abs(skew) * 1000 > FAIL_MS) return fail(text, fix);
  if (Math.abs(skew) * 1000 > WARN_MS) return warn(text, fix);
  return ok(skew === 0 ? `in step with ${new URL(url).host} (within 1 s)` : text);
}

function headDate(url: string): Promise<{ date: string | undefined; sent: number; received: number }> {
  return new Promise((resolve, reject) => {
    const sent = Date.now();
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { method: 'HEAD', timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ date: res.headers.date, sent, received: Date.now() });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => reject(new Error(errorCode(err) ?? (err.message || 'connection failed'))));
    req.end();
  });
}
