import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, SetConfig } from '../config/types.js';
import { openStore } from '../store/index.js';
import { SafetyError, step } from './context.js';
import { initFormat } from './format.js';
import { openNode } from './node.js';
import { MARKER_DIR } from './record.js';

const MARKER_README = `This directory marks the root of a fedsync sync set and holds fedsync's temporary files.
Without it, fedsync refuses to sync the directory (it may be an unmounted volume).
Do not delete it; it is never synchronised.
`;

export interface InitResult {
  set: string;
  nodeId: string;
  newNode: boolean;
  newStore: boolean;
  root: string;
  store: string;
}

/**
 * Prepares one set on this node: the root marker, the manifest with this node's id, and the
 * store's format.json (written by the first node only). Safe to run again.
 */
export async function initSet(config: Config, set: SetConfig, log: Logger): Promise<InitResult> {
  if (!existsSync(set.path) || !statSync(set.path).isDirectory()) {
    throw new SafetyError(`set "${set.name}": root ${set.path} does not exist or is not a directory; create it (or mount its volume) first`);
  }
  const store = openStore(config.store, set.name);
  let node: ReturnType<typeof openNode> | null = null;
  try {
    // The store and the passphrase are checked before anything is created here.
    const { created: newStore } = await step('init store', () =>
      initFormat(store, config.store, set.name, () => {
        const marker = join(set.path, MARKER_DIR);
        mkdirSync(join(marker, 'tmp'), { recursive: true, mode: 0o700 });
        if (!existsSync(join(marker, 'README'))) writeFileSync(join(marker, 'README'), MARKER_README);
        node = openNode(config.stateDir, set.name, log);
        return node.manifest;
      }),
    );
    const { nodeId, created } = node!;
    return { set: set.name, nodeId, newNode: created, newStore, root: set.path, store: store.location };
  } finally {
    (node as ReturnType<typeof openNode> | null)?.manifest.close();
    await store.close();
  }
}
