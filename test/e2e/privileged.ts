// Privileged steps of the e2e tests (mount, chattr): as root they run; elsewhere the test
// fails and says why, unless FEDSYNC_ALLOW_SKIP_MOUNT=1 turns that into a skip.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, type TestContext } from 'node:test';
import type { S3Target } from '../support/s3.js';
import type { Server } from './harness.js';

export function sh(cmd: string, args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Whether a privileged step can run here; fails the test (or skips it) with the reason. */
export function needs(t: TestContext, what: string, r: { ok: boolean; err: string }): boolean {
  if (r.ok) return true;
  const why = `${what} is not permitted here (${r.err}); run as root, or set FEDSYNC_ALLOW_SKIP_MOUNT=1 to skip`;
  if (process.env.FEDSYNC_ALLOW_SKIP_MOUNT === '1') t.skip(why);
  else assert.fail(why);
  return false;
}

/**
 * For a describe block on `server`: starts it before the tests, and after them undoes what a
 * failed test left (immutable attributes in `immutable`, mounts in `mounted`) and stops it.
 */
export function faultSuite(server: Server): { target: () => S3Target & { stop(): Promise<void> }; mounted: string[]; immutable: string[] } {
  let target: (S3Target & { stop(): Promise<void> }) | undefined;
  const mounted: string[] = [];
  const immutable: string[] = [];
  before(async () => {
    target = await server.start();
  });
  after(async () => {
    for (const d of immutable) sh('chattr', ['-i', d]);
    for (const m of mounted) sh('umount', [m]);
    await target?.stop();
  });
  return { target: () => target!, mounted, immutable };
}
