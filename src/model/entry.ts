/**
 * The federation's data model, shared by the protocol (src/sync) and the manifest that stores
 * it (src/manifest): types only, so both can import it from below.
 */

/** Hybrid logical clock value: `<wall ms, 13 digits>-<counter, 6 digits>` (see sync/hlc.ts). */
export type Hlc = string;

/** A version vector: for each node, a counter that grows with each of its changes of this path. */
export type VersionVector = Record<string, number>;

export type Kind = 'file' | 'symlink' | 'dir' | 'deleted';

/**
 * The state of one path in the federation. A journal record is exactly this; the manifest
 * keeps one per path (plus what the node last saw on its own disk).
 */
export interface Entry {
  /** Relative, `/`-separated, as found on disk (not re-normalised). */
  path: string;
  kind: Kind;
  /** sha256 of the content, hex; files only. */
  digest: string | null;
  size: number;
  /** Permission bits (0o777 at most: remote set-id bits are never honoured). */
  mode: number;
  /** Modification time in milliseconds; files and symlinks. */
  mtime: number;
  /** Symlinks only. */
  target: string | null;
  vv: VersionVector;
  hlc: Hlc;
  author: string;
}
