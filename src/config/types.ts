/** The validated configuration. All durations are milliseconds. */
export type Mode = 'heavyweight' | 'lightweight';
export type Role = 'both' | 'publish' | 'subscribe';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type Adopt = 'keep-both' | 'remote' | 'local';

export interface StoreConfig {
  /** `s3://bucket/prefix` or `file:///dir`, normalised (no trailing slash, no empty segment). */
  url: string;
  /** Custom S3 endpoint (Ceph RGW, MinIO, ...); unset for AWS. */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** Absolute path of a file holding the encryption passphrase. */
  passphraseFile?: string;
}

/** `max_delete`: either a share of the tree (0..1) or an absolute number of entries. */
export type MaxDelete = { kind: 'fraction'; value: number } | { kind: 'count'; value: number };

export interface SetConfig {
  name: string;
  /** Absolute path of the synchronised root, normalised, without a trailing slash. */
  path: string;
  mode: Mode;
  /** gitignore-style patterns, relative to the root. */
  exclude: string[];
  role: Role;
  /** Lightweight: wait this long after the last event before scanning dirty paths. */
  delay: number;
  /** Lightweight: poll the store this often. */
  poll: number;
  /** Lightweight: full reconciling scan this often. */
  rescan: number;
  /** A file modified within this window is left for the next cycle (default: 2 s, lightweight: `delay`). */
  settle: number;
  maxDelete: MaxDelete;
  /** `user`, `user:group`, or numeric `uid:gid`; applied to written files when root. */
  owner?: string;
  /** How long journals and superseded blobs are kept. */
  history: number;
  /** `run --loop`: time between cycles. */
  interval: number;
  /** Rewrite the node's head at least this often. */
  heartbeat: number;
  /** A node silent for longer is no longer live (housekeeping, acks). */
  nodeTimeout: number;
  /** Housekeeping leader writes a snapshot at most this often. */
  snapshotEvery: number;
  /** Unreferenced blobs are deleted only once older than this. */
  gcGrace: number;
  /** A new node: what to do with a pre-existing file that differs from the federation's. */
  adopt: Adopt;
  /** Allow symlinks whose target leaves the root. */
  allowExternalSymlinks: boolean;
  /** A shell command run after a cycle that changed files here from other nodes' records. */
  onApply?: string;
  /** How long `onApply` may run before its process group is killed. */
  onApplyTimeout: number;
}

export interface Config {
  /** The file the configuration was read from. */
  file: string;
  /** This node's display name (default: the hostname). */
  node: string;
  stateDir: string;
  logFile?: string;
  logLevel: LogLevel;
  store: StoreConfig;
  sets: SetConfig[];
}

/** A configuration problem: always names the file and, where there is one, the key. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly file: string,
    /** The key path, e.g. `sync[1].delay` (arrays of tables are counted from 0). */
    readonly key?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
