import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SetConfig } from '../../config/types.js';
import { resolveOwner } from '../../fsutil/owner.js';
import { MARKER_DIR } from '../../sync/record.js';
import { fail, ok, warn, why, type CheckResult } from './check.js';

export function rootDir(set: SetConfig): CheckResult {
  if (!existsSync(set.path)) return fail(`${set.path} does not exist`, `create it (or mount its volume), then run \`fedsync init --set ${set.name}\``);
  if (!statSync(set.path).isDirectory()) return fail(`${set.path} is not a directory`, 'point the set\'s path at a directory');
  return ok(`${set.path} is a directory`);
}

/** The marker tells a mounted volume from the empty mount point under it; the cycle writes its temp files there. */
export function rootMarker(set: SetConfig): CheckResult {
  const marker = join(set.path, MARKER_DIR);
  if (!existsSync(set.path)) return fail(`no root, so no ${MARKER_DIR}/ marker`, 'see the root check');
  if (!existsSync(marker) || !statSync(marker).isDirectory()) {
    return fail(`${marker}/ is missing: cycles refuse this root (it may be an unmounted volume)`, `if ${set.path} is the right directory and mounted, run \`fedsync init --set ${set.name}\``);
  }
  const probe = join(marker, `.doctor-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (err) {
    return fail(`${marker}/ is not writable: ${why(err)}`, 'run fedsync as root, or make the root writable (a read-only mount?)');
  }
  return ok(`${marker}/ present and writable`);
}

/** `owner` only takes effect as root, and must name a user (and group) that exist. */
export function owner(set: SetConfig): CheckResult {
  if (!set.owner) return ok('no owner set: written files belong to the user fedsync runs as');
  let ids: { uid: number; gid: number };
  try {
    ids = resolveOwner(set.owner);
  } catch (err) {
    return fail(why(err), `create the user, or fix sync.owner ("${set.owner}") in the config`);
  }
  if (process.getuid?.() !== 0) return warn(`owner "${set.owner}" is ignored because fedsync is not running as root`, 'run fedsync as root (cron.d and the systemd units do)');
  return ok(`written files get owner ${set.owner} (${ids.uid}:${ids.gid})`);
}
