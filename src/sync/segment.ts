import { gunzipSync, gzipSync } from 'node:zlib';
import { parseRecord, recordJson, type Entry } from './record.js';

/** Segments above this many records are split, so no single object grows without bound. */
export const MAX_SEGMENT_RECORDS = 10_000;
/** A segment that inflates beyond this is refused rather than allowed to exhaust memory. */
const MAX_SEGMENT_BYTES = 256 * 1024 * 1024;

interface SegmentHeader {
  fedsync: 'segment';
  v: 1;
  node: string;
  seq: number;
  count: number;
  /** Published with `--force`: its author deliberately deleted more than max_delete. */
  forced?: true;
}

/**
 * One batch of change records: gzip'd JSON lines, a header line then one record per line.
 * Deterministic for the same input, so a retried publish writes the same bytes.
 */
export function encodeSegment(node: string, seq: number, records: Entry[], forced = false): Buffer {
  const header: SegmentHeader = { fedsync: 'segment', v: 1, node, seq, count: records.length, ...(forced ? { forced: true } : {}) };
  const lines = [JSON.stringify(header), ...records.map(recordJson)];
  return gzipSync(Buffer.from(lines.join('\n') + '\n'));
}

export interface DecodedSegment {
  records: Entry[];
  forced: boolean;
  /** Records dropped one by one, with the reason (the rest of the segment still applies). */
  rejected: { line: number; reason: string }[];
}

/**
 * Parses a segment fetched from the store. A segment that is not what its key promises
 * (bad gzip, bad header, wrong node or seq, wrong count, a line that is not JSON) is refused
 * whole with an Error; a well-formed record that fails validation is only dropped.
 */
export function decodeSegment(body: Buffer, node: string, seq: number, opts: { allowExternalSymlinks: boolean }): DecodedSegment {
  let text: string;
  try {
    text = gunzipSync(body, { maxOutputLength: MAX_SEGMENT_BYTES }).toString('utf8');
  } catch (err) {
    throw new Error(`segment ${node}/${seq} is not valid gzip (${(err as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parsed = lines.map((line, i) => {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      throw new Error(`segment ${node}/${seq} line ${i + 1} is not valid JSON`);
    }
  });
  const h = parsed[0] as Partial<SegmentHeader> | undefined;
  if (!h || h.fedsync !== 'segment' || h.v !== 1) throw new Error(`segment ${node}/${seq} has no valid header`);
  if (h.node !== node || h.seq !== seq) throw new Error(`segment ${node}/${seq} claims to be ${String(h.node)}/${String(h.seq)}`);
  if (h.count !== parsed.length - 1) throw new Error(`segment ${node}/${seq} is truncated (${parsed.length - 1} of ${String(h.count)} records)`);
  const records: Entry[] = [];
  const rejected: DecodedSegment['rejected'] = [];
  parsed.slice(1).forEach((raw, i) => {
    try {
      records.push(parseRecord(raw, opts));
    } catch (err) {
      rejected.push({ line: i + 2, reason: (err as Error).message });
    }
  });
  return { records, rejected, forced: h.forced === true };
}
