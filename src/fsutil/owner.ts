import { readFileSync } from 'node:fs';

/** Resolves `user`, `user:group` or `uid:gid` to numeric ids from /etc/passwd and /etc/group. */
export function resolveOwner(spec: string, etc = '/etc'): { uid: number; gid: number } {
  const [user, group] = spec.split(':', 2) as [string, string | undefined];
  const passwd = readDb(`${etc}/passwd`);
  const pw = /^\d+$/.test(user) ? passwd.find((f) => f[2] === user) : passwd.find((f) => f[0] === user);
  const uid = /^\d+$/.test(user) ? Number(user) : pw ? Number(pw[2]) : NaN;
  if (Number.isNaN(uid)) throw new Error(`owner: no such user "${user}"`);
  let gid: number;
  if (group === undefined) {
    if (!pw) throw new Error(`owner: user "${user}" has no entry in ${etc}/passwd to take a group from; give "uid:gid"`);
    gid = Number(pw[3]);
  } else if (/^\d+$/.test(group)) gid = Number(group);
  else {
    const gr = readDb(`${etc}/group`).find((f) => f[0] === group);
    if (!gr) throw new Error(`owner: no such group "${group}"`);
    gid = Number(gr[2]);
  }
  return { uid, gid };
}

function readDb(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}
