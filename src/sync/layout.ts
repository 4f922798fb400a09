/** Key names inside a set's prefix (DESIGN.md, "Layout in the store"). */
export const FORMAT_KEY = 'format.json';
/** Proposed formats, where the store ignores conditional writes (DESIGN rule 10; format-create.ts). */
export const FORMAT_CANDIDATES_PREFIX = 'formats/';
export const HEADS_PREFIX = 'heads/';
export const JOURNAL_PREFIX = 'journal/';
export const BLOBS_PREFIX = 'blobs/';
export const SNAPSHOTS_PREFIX = 'snapshots/';
export const BUNDLES_PREFIX = 'bundles/';

export function headKey(node: string): string {
  return `${HEADS_PREFIX}${node}.json`;
}

/** The node a head key belongs to, or null for anything else under heads/. */
export function headNode(key: string): string | null {
  const m = /^heads\/([a-z2-7]{26})\.json$/.exec(key);
  return m ? m[1]! : null;
}

export function segmentKey(node: string, seq: number): string {
  return `${JOURNAL_PREFIX}${node}/${String(seq).padStart(12, '0')}`;
}

/** The owner and seq a segment key names, or null for anything else under journal/. */
export function segmentOf(key: string): { node: string; seq: number } | null {
  const m = /^journal\/([a-z2-7]{26})\/(\d{12})$/.exec(key);
  return m ? { node: m[1]!, seq: Number(m[2]) } : null;
}

export function blobKey(digest: string): string {
  return `${BLOBS_PREFIX}${digest.slice(0, 2)}/${digest}`;
}

/** A format candidate's key: random, so racers never write the same key. */
export function formatCandidateKey(id: string): string {
  return `${FORMAT_CANDIDATES_PREFIX}${id}.json`;
}

/** Whether a key under formats/ is a candidate (not, say, a probe of conditional writes). */
export function isFormatCandidate(key: string): boolean {
  return /^formats\/[0-9a-f]{32}\.json$/.test(key);
}
