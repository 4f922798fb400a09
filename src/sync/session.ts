import type { Logger } from 'pino';
import { excludeMatcher } from '../config/exclude.js';
import type { Config, SetConfig } from '../config/types.js';
import { openStore } from '../store/index.js';
import { newCycleStats, type SetContext } from './context.js';
import { Clock, type Hlc } from './hlc.js';
import { openNode } from './node.js';
import { META } from './outbox.js';
import { blobKey } from './layout.js';

/** A set opened on this node: manifest, store and clock, kept across cycles by a daemon. */
export interface Session {
  ctx: SetContext;
  close(): Promise<void>;
}

export function openSession(config: Config, set: SetConfig, log: Logger): Session {
  const { manifest, nodeId } = openNode(config.stateDir, set.name, log);
  const store = openStore(config.store, set.name);
  const ctx: SetContext = {
    set,
    nodeId,
    nodeName: config.node,
    store,
    manifest,
    clock: new Clock((manifest.getMeta(META.hlc) ?? undefined) as Hlc | undefined),
    log: log.child({ set: set.name }),
    excluded: excludeMatcher(set.exclude),
    stats: newCycleStats(),
    blobKey,
  };
  return {
    ctx,
    close: async () => {
      manifest.close();
      await store.close();
    },
  };
}
