// A file:// store is typically an NFS share. When it is unmounted under a running daemon, its
// empty mount point must not pass for an empty federation: every cycle refuses until it is
// back, with or without encryption, and nothing is written into the mount point meanwhile.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Federation, type Node, type StoreBackend } from './watch-harness.js';

const SET = 'conf';
const LIGHT = { delay: '200ms', poll: '500ms', settle: '0s' };

interface LastCycle {
  startedAt: string;
  ok: boolean;
  error: string | null;
}

function lastCycle(n: Node): LastCycle | null {
  try {
    return (JSON.parse(readFileSync(join(n.stateDir, SET, 'status.json'), 'utf8')) as { lastCycle: LastCycle | null }).lastCycle;
  } catch {
    return null; // not written yet, or being replaced
  }
}

async function until(what: string, ok: () => boolean, n: Node, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${n.name}: ${what} did not happen; last cycle: ${JSON.stringify(lastCycle(n))}\n${n.daemon?.stderr ?? ''}`);
    await sleep(100);
  }
}

function fileStore(dir: string, passphrase: string | null): StoreBackend {
  return {
    name: 'file',
    fresh: () => ({ store: { url: `file://${dir}` }, env: passphrase ? { FEDSYNC_PASSPHRASE: passphrase } : ({} as Record<string, string>) }),
    stop: async () => {},
  };
}

function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

describe('a file:// store unmounted under a running daemon', { concurrency: false }, () => {
  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: every cycle refuses while it is gone, nothing is written to the mount point, and syncing resumes when it is back`, { timeout: 180_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fedsync-mount-'));
      const share = join(dir, 'share');
      const fed = new Federation(fileStore(share, encrypted ? 'correct horse battery staple' : null), 'mount');
      try {
        const a = await fed.add('alpha', { sets: [{ name: SET }], defaults: LIGHT });
        writeFileSync(join(a.root(), 'before.conf'), 'before\n');
        a.start();
        await until('a first successful cycle', () => lastCycle(a)?.ok === true, a);

        // The share goes away; its mount point stays, empty.
        const away = join(dir, 'unmounted');
        renameSync(share, away);
        mkdirSync(share);
        const gone = Date.now();
        writeFileSync(join(a.root(), 'during.conf'), 'written while the share was gone\n');
        await until(
          'a refused cycle',
          () => {
            const c = lastCycle(a);
            return c !== null && Date.parse(c.startedAt) >= gone && !c.ok;
          },
          a,
        );
        const refused = lastCycle(a)!;
        assert.match(refused.error ?? '', /format\.json is missing: is the store's directory mounted\?/);
        assert.deepEqual(listTree(share), [], 'nothing was written into the empty mount point');

        // Mounted again: the change made meanwhile is published.
        rmSync(share, { recursive: true });
        renameSync(away, share);
        const back = Date.now();
        await until(
          'a successful cycle after the share came back',
          () => {
            const c = lastCycle(a);
            return c !== null && Date.parse(c.startedAt) >= back && c.ok;
          },
          a,
        );
        const b = await fed.add('beta', { sets: [{ name: SET }], defaults: LIGHT });
        const r = await b.fedsync(['run', '--set', SET]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.equal(readFileSync(join(b.root(), 'during.conf'), 'utf8'), 'written while the share was gone\n');
        assert.ok(existsSync(join(b.root(), 'before.conf')));
      } finally {
        await fed.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
