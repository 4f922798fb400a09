import type { Logger } from 'pino';
import { excludeMatcher } from '../config/exclude.js';
import type { Config, SetConfig } from '../config/types.js';
import type { Manifest } from '../manifest/manifest.js';
import { openStore, type RequestCounts, type Store } from '../store/index.js';
import { newCycleStats, type SetContext } from './context.js';
import { checkFormatPresent, openFormat } from './format.js';
import { Clock, type Hlc } from './hlc.js';
import { openNode } from './node.js';
import { META } from './outbox.js';

/**
 * A set opened on this node, kept across cycles by a daemon. The manifest and the store open
 * at once, without a request; the context every step works with is built once the set's
 * format opens (the store then wrapped when the set is encrypted), and is never changed
 * after: a store that is not there yet is retried by the next cycle.
 */
export class Session {
  readonly manifest: Manifest;
  readonly nodeId: string;
  /** True for paths (relative, `/`-separated) that the set's `exclude` keeps out. */
  readonly excluded: SetContext['excluded'];
  private readonly store: Store;
  private ctx: SetContext | null = null;

  constructor(
    private readonly config: Config,
    private readonly set: SetConfig,
    private readonly log: Logger,
    store?: Store,
  ) {
    ({ manifest: this.manifest, nodeId: this.nodeId } = openNode(config.stateDir, set.name, log));
    this.store = store ?? openStore(config.store, set.name);
    this.excluded = excludeMatcher(set.exclude);
  }

  /** Where the store points (as configured: encryption does not move it). */
  get location(): string {
    return this.store.location;
  }

  /** Requests made to the store so far, through this session. */
  get requests(): RequestCounts {
    return this.store.requests;
  }

  /**
   * The set's context: the first call opens the format, later ones return the same context
   * after checking, where that costs no request, that the store is still mounted.
   */
  async context(): Promise<SetContext> {
    if (this.ctx) {
      checkFormatPresent(this.store);
      return this.ctx;
    }
    const opened = await openFormat(this.store, this.manifest, this.config.store, this.set.name);
    this.ctx = {
      set: this.set,
      nodeId: this.nodeId,
      nodeName: this.config.node,
      store: opened.store,
      manifest: this.manifest,
      clock: new Clock((this.manifest.getMeta(META.hlc) ?? undefined) as Hlc | undefined),
      log: this.log.child({ set: this.set.name }),
      excluded: this.excluded,
      stats: newCycleStats(),
      blobKey: opened.blobKey,
    };
    return this.ctx;
  }

  async close(): Promise<void> {
    this.manifest.close();
    await this.store.close();
  }
}

/** Opens a set on the configured store, or on `store` (a test's fault-injecting one). */
export function openSession(config: Config, set: SetConfig, log: Logger, store?: Store): Session {
  return new Session(config, set, log, store);
}
