// Shared by the operations tests: temp nodes with a config on a file:// store, and the built
// `fedsync` binary run as a separate process, as cron or systemd would run it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(REPO, 'bin', 'fedsync');

if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) {
  throw new Error('dist/ is missing: build first (`npx tsc -p tsconfig.json`, or `npm test`, which builds)');
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fedsync ARGS` to completion. The environment is cleaned of AWS and FEDSYNC variables. */
export function fedsync(args: string[], env: Record<string, string | undefined> = {}): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: cleanEnv(env), encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Like {@link fedsync}, without blocking the event loop (needed when the test also serves HTTP). */
export function fedsyncAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(AWS_|FEDSYNC_)/.test(k)) env[k] = v;
  // The SDK must not wander off to an instance metadata service or a profile on the test host.
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.AWS_CONFIG_FILE = '/nonexistent';
  env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function tempDir(t: { after(fn: () => void): void }, prefix = 'fedsync-ops-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (!process.env.FEDSYNC_TEST_KEEP) t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface SetSpec {
  name: string;
  mode?: 'heavyweight' | 'lightweight';
  extra?: string;
}

export interface NodeSpec {
  node: string;
  sets: SetSpec[];
  /** The store URL; default a file:// store in `<dir>/store` shared by every node of `dir`. */
  store?: string;
  storeExtra?: string;
  logFile?: string | null;
}

export interface TestNode {
  dir: string;
  config: string;
  stateDir: string;
  root(set: string): string;
  run(args: string[], env?: Record<string, string | undefined>): Result;
}

/** A node in `<dir>/<node>/`: its roots (created), state dir and config; sets settle at once. */
export function makeNode(dir: string, spec: NodeSpec): TestNode {
  const home = join(dir, spec.node);
  const stateDir = join(home, 'state');
  const root = (set: string) => join(home, 'roots', set);
  const log = spec.logFile === undefined ? join(home, 'log', 'fedsync.log') : spec.logFile;
  let text = `node = "${spec.node}"\nstate_dir = "${stateDir}"\n`;
  if (log) text += `log_file = "${log}"\n`;
  text += `\n[store]\nurl = "${spec.store ?? `file://${join(dir, 'store')}`}"\n${spec.storeExtra ?? ''}\n`;
  for (const s of spec.sets) {
    mkdirSync(root(s.name), { recursive: true });
    text += `\n[[sync]]\nname = "${s.name}"\npath = "${root(s.name)}"\nmode = "${s.mode ?? 'heavyweight'}"\nsettle = "0s"\n${s.extra ?? ''}\n`;
  }
  const config = join(home, 'fedsync.toml');
  mkdirSync(home, { recursive: true });
  writeFileSync(config, text);
  return { dir: home, config, stateDir, root, run: (args, env) => fedsync(['-c', config, ...args], env) };
}

/** Fails with the command's output when it did not exit with `code`. */
export function expectCode(r: Result, code: number, what: string): Result {
  if (r.code !== code) throw new Error(`${what}: exit ${r.code}, expected ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

/** The doctor's lines by `scope: check`, each as verdict and text. */
export function doctorLines(r: { stdout: string }): Map<string, { verdict: string; text: string }> {
  const out = new Map<string, { verdict: string; text: string }>();
  for (const line of r.stdout.trim().split('\n')) {
    const m = /^(ok {2}|WARN|FAIL|skip) ([^:]+: [^:]+): (.*)$/.exec(line);
    assert.ok(m, `not a doctor line: ${line}`);
    out.set(m[2]!, { verdict: m[1]!.trim(), text: m[3]! });
  }
  return out;
}

/** The doctor's line for `key` (`scope: check`): its verdict must be `verdict`, its text match `pattern`. */
export function expectCheck(r: { stdout: string }, key: string, verdict: string, pattern?: RegExp): string {
  const l = doctorLines(r).get(key);
  assert.ok(l, `no line for ${key} in:\n${r.stdout}`);
  assert.equal(l.verdict, verdict, `${key}: ${l.text}`);
  if (pattern) assert.match(l.text, pattern);
  return l.text;
}
