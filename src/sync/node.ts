import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Manifest } from '../manifest/manifest.js';
import { newNodeId } from './ids.js';
import { logNewId, NODE_META, retireId } from './identity.js';

export function manifestPath(stateDir: string, set: string): string {
  return join(stateDir, set, 'manifest.db');
}

function machineId(): string {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(f, 'utf8').trim();
      if (id) return id;
    } catch {
      // try the next one
    }
  }
  return '';
}

/**
 * Opens (or creates) the set's manifest and returns this node's id in it. A manifest copied
 * from another machine (a cloned disk image) would make two machines write one node's
 * journal, so when the machine id or hostname kept beside the id no longer match, the node
 * takes a new id (retireId): the old one becomes a peer read from what this manifest says it
 * published on, and the changes it had not published yet are published under the new id
 * (this copy may be the only one that holds them).
 */
export function openNode(stateDir: string, set: string, log: Logger): { manifest: Manifest; nodeId: string; created: boolean } {
  const file = manifestPath(stateDir, set);
  const created = !existsSync(file);
  const manifest = new Manifest(file);
  const here = { machine: machineId(), host: hostname() };
  let nodeId = manifest.getMeta(NODE_META.id);
  if (!nodeId) {
    nodeId = newNodeId();
    manifest.durableTransaction(() => {
      manifest.setMeta(NODE_META.id, nodeId!);
      manifest.setMeta(NODE_META.machine, here.machine);
      manifest.setMeta(NODE_META.host, here.host);
      manifest.setMeta(NODE_META.created, new Date().toISOString());
    });
    return { manifest, nodeId, created: true };
  }
  const was = { machine: manifest.getMeta(NODE_META.machine) ?? '', host: manifest.getMeta(NODE_META.host) ?? '' };
  if (was.machine !== here.machine || was.host !== here.host) {
    const old = nodeId;
    nodeId = retireId(manifest, old, was.host, () => {
      manifest.setMeta(NODE_META.machine, here.machine);
      manifest.setMeta(NODE_META.host, here.host);
    });
    logNewId(log.child({ set }), old, nodeId, 'state was copied from another machine', { was, now: here });
  }
  return { manifest, nodeId, created };
}
