import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Manifest } from '../manifest/manifest.js';
import { PreconditionFailedError } from '../store/errors.js';
import type { ObjectInfo, Store } from '../store/store.js';
import { conditionalWrites } from './conditional.js';
import { FORMAT_CANDIDATES_PREFIX, FORMAT_KEY, formatCandidateKey, isFormatCandidate } from './layout.js';

/**
 * How long a candidate must have been listed before it can be confirmed. A candidate stored
 * after a node's confirming listing must order after the winner; the store dates an object
 * when its PUT arrives (to the second on S3), so this must exceed that granularity plus the
 * time a small PUT can spend between arriving and being listed (docs/protocol.md, "Format").
 */
export const SETTLE_MS = 3_000;
const MAX_ROUNDS = 20;

/**
 * Creates the set's format.json race-free (DESIGN rule 10) and returns the bytes in force,
 * which are `ours` only if this node's proposal won. Where the store honours `If-None-Match`
 * (learnt once, conditional.ts) one conditional PUT decides; elsewhere, immutable candidates.
 */
export async function createFormat(store: Store, manifest: Manifest, ours: Buffer): Promise<Buffer> {
  if (await conditionalWrites(store, manifest, { recheck: true })) return createExact(store, ours);
  return createByCandidates(store, ours);
}

async function createExact(store: Store, ours: Buffer): Promise<Buffer> {
  try {
    await store.put(FORMAT_KEY, ours, { ifNoneMatch: true });
    return ours;
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  // Another node's (or this write's own first attempt, retried after a lost answer).
  const body = await store.get(FORMAT_KEY);
  if (!body) throw new Error(`${store.location}/${FORMAT_KEY} was refused as existing but cannot be read back; run \`fedsync init\` again`);
  return body;
}

interface Candidate {
  key: string;
  etag: string;
  at: number;
  body: Buffer;
}

/**
 * Without compare-and-swap: each racer stores its proposal under a random key of its own
 * (never overwritten, never deleted), then lists the candidates and takes the first by (the
 * store's date of the object, key). A racer slow between its listing and its write gets a later
 * date, so it cannot undercut a winner that was already listed. The winner is confirmed only
 * when a second listing, taken SETTLE_MS after the first, names the same one; then its bytes
 * become format.json. A format.json found meanwhile was confirmed by another node: it wins.
 */
async function createByCandidates(store: Store, ours: Buffer): Promise<Buffer> {
  await store.put(formatCandidateKey(randomBytes(16).toString('hex')), ours);
  const bodies = new Map<string, Buffer | null>();
  let first = await firstCandidate(store, bodies);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    await sleep(SETTLE_MS);
    const confirmed = await store.get(FORMAT_KEY);
    if (confirmed) return confirmed;
    const second = await firstCandidate(store, bodies);
    if (first && second && first.key === second.key && first.etag === second.etag && first.at === second.at) {
      await store.put(FORMAT_KEY, second.body);
      // Every node that confirms writes these same bytes; anything else means the settle
      // delay was too short for this store, and saying so beats diverging.
      const back = await store.get(FORMAT_KEY);
      if (!back?.equals(second.body)) {
        throw new Error(`${store.location}/${FORMAT_KEY} changed right after this node confirmed it: two formats were chosen at once; run \`fedsync init\` again on every node that ran it`);
      }
      return second.body;
    }
    first = second;
  }
  throw new Error(`the format candidates in ${store.location}/${FORMAT_CANDIDATES_PREFIX} did not settle after ${MAX_ROUNDS} listings; run \`fedsync init\` again`);
}

/**
 * The first candidate by (date, key) whose body is a fedsync format file of any version (so
 * every fedsync, old or new, skips the same ones). Bodies are read once (they never change).
 */
async function firstCandidate(store: Store, bodies: Map<string, Buffer | null>): Promise<Candidate | null> {
  const listed: ObjectInfo[] = [];
  for await (const o of store.list(FORMAT_CANDIDATES_PREFIX)) if (isFormatCandidate(o.key)) listed.push(o);
  listed.sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const o of listed) {
    const id = `${o.key}\0${o.etag}`;
    if (!bodies.has(id)) bodies.set(id, await store.get(o.key));
    const body = bodies.get(id);
    if (body && isFormatFile(body)) return { key: o.key, etag: o.etag, at: o.lastModified.getTime(), body };
  }
  return null;
}

function isFormatFile(body: Buffer): boolean {
  try {
    const f = JSON.parse(body.toString('utf8')) as { fedsync?: unknown } | null;
    return f !== null && typeof f === 'object' && f.fedsync === 'format';
  } catch {
    return false;
  }
}
