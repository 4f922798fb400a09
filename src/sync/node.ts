import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Manifest } from '../manifest/manifest.js';
import { newNodeId } from './ids.js';
import { META } from './outbox.js';

const NODE_META = { id: 'node_id', machine: 'machine_id', host: 'hostname', created: 'created' } as const;

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
 * takes a new id and treats the old one as a peer it is already caught up with.
 */
export function openNode(stateDir: string, set: string, log: Logger): { manifest: Manifest; nodeId: string; created: boolean } {
  const file = manifestPath(stateDir, set);
  const created = !existsSync(file);
  const manifest = new Manifest(file);
  const here = { machine: machineId(), host: hostname() };
  let nodeId = manifest.getMeta(NODE_META.id);
  if (!nodeId) {
    nodeId = newNodeId();
    manifest.transaction(() => {
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
    nodeId = newNodeId();
    log.warn({ set, old, new: nodeId, was, now: here }, 'state was copied from another machine; this node takes a new id');
    manifest.transaction(() => {
      const published = Number(manifest.getMeta(META.publishedSeq) ?? 0);
      // The old node's published changes are already in this manifest; its unpublished
      // ones belong to the machine that still runs as the old node.
      manifest.putPeer({ node: old, name: was.host, role: '', cursor: published, headEtag: null, headSeq: published, heartbeat: null, error: null });
      manifest.clearOutboxThrough(Number.MAX_SAFE_INTEGER);
      for (const k of [META.publishedSeq, META.storedSeq, META.headAt, META.headAcks]) manifest.setMeta(k, 0);
      manifest.setMeta(NODE_META.id, nodeId!);
      manifest.setMeta(NODE_META.machine, here.machine);
      manifest.setMeta(NODE_META.host, here.host);
    });
  }
  return { manifest, nodeId, created };
}
