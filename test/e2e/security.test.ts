// Security acceptance, end to end, on the built binary against s3rver and Ceph RGW (when
// test/support/rgw.sh's FEDSYNC_TEST_RGW_* are set; FEDSYNC_REQUIRE_RGW=1 makes it mandatory).
// Every node has `passphrase_file` (mode 0600) unless a test says otherwise.
//
// (a) What the bucket holds reveals no name and no content: every object is listed and
//     downloaded with an independent client (rclone), and searched for the tree's names and
//     contents (and their digests), also inside anything that gunzips; two identical files
//     are one blob.
// (b) A wrong passphrase: `run` and `init` exit non-zero with one line on stderr, and change
//     nothing in the store (listing and object hashes) or on disk.
// (c) A flipped byte in a blob, a segment, a head, a snapshot: detected, rejected, logged; the
//     receiving node's cycle survives; a head or segment pauses that peer with an error shown
//     by `fedsync status --json`.
// (d) Roles publish / both / subscribe behave as documented, heads read with the keys.
// (e) Secrets (the S3 secret key, the passphrase) appear nowhere fedsync prints or writes, even
//     at log_level "trace"; state files are 0600 and state directories 0700.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { openEncryption, type EncryptionParams, type Keys } from '../../src/crypto/keys.js';
import { unseal } from '../../src/crypto/seal.js';
import type { S3Target } from '../support/s3.js';
import { assertOk, assertTreesEqual, describeResult, FedNode, Federation, ownStderrLines, oneServer, sha256, treeDigest, type CommandResult } from './harness.js';

const PASSPHRASE = 'Correct-Horse-Battery-Staple-9f41c7';

/** Distinctive names and contents, so that any of them in clear would be found. */
const TREE: Record<string, string> = {
  'Confidential-Merger-Plan-ZEBRAFISH.txt': 'PAYLOAD-PELICAN: the merger closes on the 3rd\n',
  'clients/Acme-Widgets-Invoice-QUOKKA.html': '<p>PAYLOAD-MARMOSET invoice total 12345</p>\n',
  'clients/deep/nested/Payroll-2026-NARWHAL.csv': 'name,salary\nPAYLOAD-AXOLOTL,99999\n',
  'same-one-OCELOT.txt': 'PAYLOAD-WOMBAT identical content in two files\n',
  'elsewhere/same-two-TAPIR.txt': 'PAYLOAD-WOMBAT identical content in two files\n',
  'big-BINTURONG.bin': 'PAYLOAD-KINKAJOU '.repeat(20_000),
};
const SECRET_WORDS = ['ZEBRAFISH', 'QUOKKA', 'NARWHAL', 'OCELOT', 'TAPIR', 'BINTURONG', 'Confidential', 'Payroll', 'clients', 'PAYLOAD', 'PELICAN', 'MARMOSET', 'AXOLOTL', 'WOMBAT', 'KINKAJOU', 'merger', 'salary'];

// ---------------------------------------------------------------------------------------------

/** A federation whose nodes all have `passphrase_file` (0600) in [store]. */
async function encryptedFederation(target: S3Target, nodes: string[], opts: { sync?: Record<string, string | number | boolean>; logLevel?: string; passphrase?: string } = {}): Promise<Federation> {
  const fed = await Federation.create(target, { nodes, init: false, sync: opts.sync, logLevel: opts.logLevel });
  for (const n of fed.nodes) {
    // fedsync makes the state directory itself (so its mode is fedsync's choice).
    rmSync(n.stateDir, { recursive: true, force: true });
    withPassphrase(n, opts.passphrase ?? PASSPHRASE);
  }
  for (const n of fed.nodes) await n.init();
  return fed;
}

function passFile(n: FedNode): string {
  return join(n.dir, 'passphrase');
}

function withPassphrase(n: FedNode, passphrase: string): void {
  writeFileSync(passFile(n), `${passphrase}\n`);
  chmodSync(passFile(n), 0o600);
  const text = readFileSync(n.config, 'utf8');
  if (!text.includes('passphrase_file')) writeFileSync(n.config, text.replace('force_path_style = true\n', `force_path_style = true\npassphrase_file = ${JSON.stringify(passFile(n))}\n`));
}

function writeTree(root: string, files: Record<string, string>): void {
  for (const [p, body] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), body);
  }
}

/** Every object of the set, as (key, sha256) pairs: the store's state, for "nothing changed". */
async function storeState(fed: Federation): Promise<string> {
  const out: string[] = [];
  for (const o of await fed.listObjects()) out.push(`${o.key} ${sha256((await fed.getObject(o.key)) ?? Buffer.alloc(0))}`);
  return out.sort().join('\n');
}

async function keysOf(fed: Federation): Promise<Keys> {
  const format = JSON.parse((await fed.getObject('format.json'))!.toString()) as { encryption: EncryptionParams };
  return openEncryption(PASSPHRASE, format.encryption, 'test');
}

async function sealedHead(fed: Federation, keys: Keys, id: string): Promise<{ seq: number; acks: Record<string, number>; heartbeat: string; role: string; name: string }> {
  const key = `heads/${id}.json`;
  const body = await fed.getObject(key);
  assert.ok(body, `no head for ${id}`);
  return JSON.parse(unseal(keys.meta, key, body).toString()) as { seq: number; acks: Record<string, number>; heartbeat: string; role: string; name: string };
}

/** Flips one byte in the middle of an object (a bucket writer without the passphrase can). */
async function flipByte(fed: Federation, key: string): Promise<void> {
  const body = await fed.getObject(key);
  assert.ok(body, `no object ${key}`);
  body[body.length >> 1]! ^= 0x01;
  await fed.putObject(key, body);
}

async function newKeys(fed: Federation, prefix: string, before: Set<string>): Promise<string[]> {
  return (await fed.listObjects(prefix)).map((o) => o.key).filter((k) => !before.has(k));
}

async function keySet(fed: Federation, prefix: string): Promise<Set<string>> {
  return new Set((await fed.listObjects(prefix)).map((o) => o.key));
}

interface StatusPeer {
  node: string;
  name: string;
  error: string | null;
}
/** The peers `fedsync status --json` reports (its exit code is the set's health, not an error). */
async function statusPeers(n: FedNode): Promise<StatusPeer[]> {
  const r = await n.fedsync(['status', '--json']);
  assert.ok(r.code !== null && r.code <= 2, describeResult(r));
  const doc = JSON.parse(r.stdout) as { sets: { peers: StatusPeer[] }[] };
  return doc.sets.flatMap((s) => s.peers);
}

// rclone, configured from the environment only (S3-SERVERS.md), without AWS_CA_BUNDLE.
function rclone(target: S3Target, args: string[]): string {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  Object.assign(env, {
    RCLONE_CONFIG_S3_TYPE: 's3',
    RCLONE_CONFIG_S3_PROVIDER: 'Other',
    RCLONE_CONFIG_S3_ENDPOINT: target.endpoint,
    RCLONE_CONFIG_S3_ACCESS_KEY_ID: target.accessKeyId,
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: target.secretAccessKey,
    RCLONE_CONFIG_S3_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_S3_REGION: 'us-east-1',
  });
  const r = spawnSync('rclone', [...args, '--fast-list'], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `rclone ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function walkFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (lstatSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

const oneLine = (r: CommandResult) => {
  const lines = ownStderrLines(r);
  assert.equal(lines.length, 1, `expected exactly one line on stderr:\n${describeResult(r)}`);
  return lines[0]!;
};

// ---------------------------------------------------------------------------------------------

for (const server of oneServer('security')) {
  describe(`security on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    const feds: Federation[] = [];
    const track = (f: Federation) => (feds.push(f), f);
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      for (const f of feds) await f.close();
      await target?.stop();
    });

    it('(a) the bucket holds no name, no content and no digest in clear, and identical files are one blob (checked with rclone)', async () => {
      const fed = track(await encryptedFederation(target, ['A', 'B']));
      const [a, b] = fed.nodes as [FedNode, FedNode];
      writeTree(a.root, TREE);
      await a.run();
      await b.run();
      assertTreesEqual([{ name: 'A', tree: a.snapshot() }, { name: 'B', tree: b.snapshot() }], 'after publishing');
      // A snapshot and its bundles too (they pack small files' contents).
      assertOk(await a.fedsync(['housekeep']));
      assertOk(await b.fedsync(['housekeep']));

      const base = `s3:${fed.bucket}/${fed.setPrefix}`;
      const listing = JSON.parse(rclone(target, ['lsjson', '--recursive', '--files-only', base])) as { Path: string; Size: number }[];
      const keys = listing.map((o) => o.Path).sort();
      assert.ok(keys.includes('format.json') && keys.some((k) => k.startsWith('heads/')) && keys.some((k) => k.startsWith('journal/')) && keys.some((k) => k.startsWith('snapshots/')), `unexpected listing: ${keys.join(', ')}`);
      const dl = mkdtempSync(join(tmpdir(), 'fedsync-sec-dl-'));
      try {
        rclone(target, ['copy', base, dl]);
        const files = walkFiles(dl);
        assert.equal(files.length, keys.length, 'rclone downloaded every listed object');
        const digests = [...new Set(Object.values(TREE))].map((c) => sha256(c));
        const needles = [...SECRET_WORDS, ...Object.keys(TREE), ...digests, ...digests.map((d) => d.slice(0, 16)), PASSPHRASE];
        const found: string[] = [];
        for (const f of files) {
          const key = relative(dl, f);
          const body = readFileSync(f);
          const texts = [key, body.toString('latin1')];
          try {
            texts.push(gunzipSync(body).toString('latin1'));
            found.push(`${key} is plain gzip`);
          } catch {
            // expected: nothing but format.json is readable
          }
          for (const t of texts) for (const n of needles) if (t.toLowerCase().includes(n.toLowerCase())) found.push(`${JSON.stringify(n)} in ${key}`);
          // format.json and the candidates proposed for it (where the store ignores conditional
          // writes) are the one plain object: they carry the salt, never a key or a name.
          if (key === 'format.json' || /^formats\/[0-9a-f]{32}\.json$/.test(key)) {
            const format = JSON.parse(body.toString()) as { encryption: EncryptionParams | null };
            assert.equal(format.encryption?.cipher, 'aes-256-gcm', `${key} announces the encryption`);
            continue;
          }
          const magic = body.subarray(0, 4).toString('latin1');
          if (!(key.startsWith('blobs/') ? magic === 'FSB2' : magic === 'FSE1')) found.push(`${key} is not an encrypted object (starts with ${JSON.stringify(magic)})`);
        }
        assert.deepEqual(found, [], 'the bucket leaks');
        // One blob per distinct content: the two identical files share one.
        const blobs = keys.filter((k) => k.startsWith('blobs/'));
        assert.equal(blobs.length, new Set(Object.values(TREE)).size, `blobs: ${blobs.join(', ')}`);
        for (const k of blobs) assert.match(k, /^blobs\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/);
      } finally {
        rmSync(dl, { recursive: true, force: true });
      }
    });

    it('(b) a wrong passphrase: run and init fail with one line, and nothing changes in the store or on disk', async () => {
      const fed = track(await encryptedFederation(target, ['A', 'B']));
      const [a, b] = fed.nodes as [FedNode, FedNode];
      writeTree(a.root, { 'one.txt': 'one\n' });
      await a.run();
      await b.run();
      // A local change that a working run would publish, and the passphrase changed under A.
      writeFileSync(a.abs('pending.txt'), 'would be published\n');
      writeFileSync(passFile(a), 'Not-The-Passphrase\n');
      const store = await storeState(fed);
      const tree = treeDigest(a.root, { includeMarker: true });
      const r = await a.fedsync(['run']);
      assert.notEqual(r.code, 0, `run with a wrong passphrase succeeded:\n${describeResult(r)}`);
      const line = oneLine(r);
      assert.match(line, /wrong passphrase/);
      assert.ok(!line.includes('Not-The-Passphrase') && !line.includes(PASSPHRASE), 'the message quotes no passphrase');
      assert.equal(await storeState(fed), store, 'the store changed');
      assert.equal(treeDigest(a.root, { includeMarker: true }), tree, 'the local tree changed');
      // The dry run too.
      const dry = await a.fedsync(['run', '--dry-run']);
      assert.notEqual(dry.code, 0, describeResult(dry));
      assert.match(oneLine(dry), /wrong passphrase/);

      // A new node with the wrong passphrase: init creates nothing, here or in the store.
      const c = new FedNode(fed, 'C');
      mkdirSync(c.root, { recursive: true });
      c.writeConfig(target.endpoint);
      withPassphrase(c, 'Not-The-Passphrase');
      const storeBefore = await storeState(fed);
      const ri = await c.fedsync(['init']);
      assert.notEqual(ri.code, 0, `init with a wrong passphrase succeeded:\n${describeResult(ri)}`);
      assert.match(oneLine(ri), /wrong passphrase/);
      assert.deepEqual(readdirSync(c.root), [], 'init created something in the root');
      assert.ok(!existsSync(c.stateDir), `init created the state directory: ${walkFiles(c.stateDir).join(', ')}`);
      assert.equal(await storeState(fed), storeBefore, 'init changed the store');
      // And with the right one it joins.
      writeFileSync(passFile(c), `${PASSPHRASE}\n`);
      await c.init();
      await c.run();
      assert.equal(readFileSync(c.abs('one.txt'), 'utf8'), 'one\n');
    });

    describe('(c) a flipped byte is detected and rejected; the receiving node goes on', () => {
      /** A, B in sync on a few files; returns the federation. */
      async function pair(): Promise<{ fed: Federation; a: FedNode; b: FedNode }> {
        const fed = track(await encryptedFederation(target, ['A', 'B']));
        const [a, b] = fed.nodes as [FedNode, FedNode];
        writeTree(a.root, { 'base.txt': 'base\n' });
        await a.run();
        await b.run();
        return { fed, a, b };
      }
      // A blob failing its digest keeps its record wanted (retried; warnings after the first error).
      const rejections = (n: FedNode) =>
        n.logLines().filter((l) => l.msg === 'rejected a remote record' || l.msg === 'cannot apply a remote record now; it stays wanted and is retried' || String(l.msg).includes('paused until it is fixed'));

      it('in a blob: the file is not written, the rejection is logged once, the cycle succeeds', async () => {
        const { fed, a, b } = await pair();
        const blobs = await keySet(fed, 'blobs/');
        writeFileSync(a.abs('victim.txt'), 'content that will be tampered with\n');
        writeFileSync(a.abs('fine.txt'), 'content that arrives\n');
        await a.run();
        const added = await newKeys(fed, 'blobs/', blobs);
        assert.equal(added.length, 2);
        // victim.txt's blob is the one of its size (the two contents differ in length).
        for (const k of added) {
          const body = (await fed.getObject(k))!;
          if (body.length === 'content that will be tampered with\n'.length + 4 + 7 + 16) await flipByte(fed, k);
        }
        const before = rejections(b).length;
        const r = await b.run();
        assert.equal(r.code, 0);
        assert.ok(!existsSync(b.abs('victim.txt')), 'a tampered blob was written');
        assert.equal(readFileSync(b.abs('fine.txt'), 'utf8'), 'content that arrives\n');
        const lines = rejections(b).slice(before);
        assert.equal(lines.length, 1, `one rejection line: ${JSON.stringify(lines)}`);
        assert.equal(lines[0]!.path, 'victim.txt');
        await b.run();
        assert.equal(rejections(b).length, before + 1, 'the rejection is reported once as an error, not every cycle');
      });

      for (const what of ['segment', 'head'] as const) {
        it(`in a ${what}: nothing of it is applied, the peer is paused with an error in status --json, other peers go on`, async () => {
          const { fed, a, b } = await pair();
          // A third node whose changes must still arrive at B.
          const c = new FedNode(fed, 'C');
          mkdirSync(c.root, { recursive: true });
          rmSync(c.stateDir, { recursive: true, force: true });
          c.writeConfig(target.endpoint);
          withPassphrase(c, PASSPHRASE);
          await c.init();
          await c.run();
          const segs = await keySet(fed, `journal/${a.id}/`);
          writeFileSync(a.abs('victim.txt'), 'published in the tampered segment\n');
          await a.run();
          writeFileSync(c.abs('from-c.txt'), 'from C\n');
          await c.run();
          const key = what === 'head' ? `heads/${a.id}.json` : (await newKeys(fed, `journal/${a.id}/`, segs))[0]!;
          await flipByte(fed, key);
          const r = await b.fedsync(['run']);
          assert.equal(r.code, 0, `B's cycle must survive a tampered ${what} of one peer:\n${describeResult(r)}`);
          assert.ok(!existsSync(b.abs('victim.txt')), `a record from a tampered ${what} was applied`);
          assert.equal(readFileSync(b.abs('from-c.txt'), 'utf8'), 'from C\n', 'the other peer\'s change did not arrive');
          const peer = (await statusPeers(b)).find((p) => p.node === a.id);
          assert.ok(peer?.error, `status --json shows no error for A: ${JSON.stringify(peer)}`);
          assert.match(peer.error, /authentic|tamper|integrity|encrypted/i);
          assert.ok(b.logLines().some((l) => String(l.msg).includes('paused until it is fixed')), 'the pause is logged');
        });
      }

      it('in a snapshot: a new node does not use it, says so, and still joins from the journals', async () => {
        const { fed, a, b } = await pair();
        writeTree(a.root, { 'x/one.txt': '1\n', 'x/two.txt': '2\n' });
        await a.run();
        await b.run();
        const snaps = await keySet(fed, 'snapshots/');
        assertOk(await a.fedsync(['housekeep']));
        assertOk(await b.fedsync(['housekeep']));
        const made = await newKeys(fed, 'snapshots/', snaps);
        const all = [...(await keySet(fed, 'snapshots/'))].sort();
        assert.ok(all.length > 0, `no snapshot was written (made ${made.join(', ')})`);
        await flipByte(fed, all.at(-1)!);
        const c = new FedNode(fed, 'C');
        mkdirSync(c.root, { recursive: true });
        c.writeConfig(target.endpoint);
        withPassphrase(c, PASSPHRASE);
        await c.init();
        const r = await c.fedsync(['run']);
        assert.equal(r.code, 0, `a new node's cycle must survive a tampered snapshot:\n${describeResult(r)}`);
        assertTreesEqual([{ name: 'A', tree: a.snapshot() }, { name: 'C', tree: c.snapshot() }], 'the new node joined from the journals');
        assert.ok(c.logLines().some((l) => l.level === 'error' && /snapshot/.test(JSON.stringify(l))), 'the bad snapshot is logged');
      });
    });

    it('(d) roles: publish never applies, subscribe never publishes and reverts drift (kept under .fedsync/drift/), its head still acks and beats', async () => {
      const fed = track(await encryptedFederation(target, ['P', 'X', 'S']));
      const [p, x, s] = fed.nodes as [FedNode, FedNode, FedNode];
      const setRole = (n: FedNode, role: string) => writeFileSync(n.config, readFileSync(n.config, 'utf8').replace('mode = "heavyweight"\n', `mode = "heavyweight"\nrole = ${JSON.stringify(role)}\n`));
      setRole(p, 'publish');
      setRole(s, 'subscribe');
      writeTree(p.root, { 'p-file.txt': 'from the publisher\n', 'shared.txt': 'federation version\n' });
      await p.run();
      await x.run();
      await s.run();
      writeFileSync(x.abs('x-file.txt'), 'from X\n');
      await x.run();
      await p.run();
      await s.run();
      await x.run();
      // publish: never takes remote changes.
      assert.ok(!existsSync(p.abs('x-file.txt')), 'the publisher applied a remote change');
      // both and subscribe: everything.
      for (const n of [x, s]) {
        assert.equal(readFileSync(n.abs('p-file.txt'), 'utf8'), 'from the publisher\n');
        assert.equal(readFileSync(n.abs('x-file.txt'), 'utf8'), 'from X\n');
      }
      // subscribe: local drift is reverted, the drifted content kept.
      writeFileSync(s.abs('shared.txt'), 'DRIFTED on the subscriber\n');
      writeFileSync(s.abs('rogue.txt'), 'ROGUE file on the subscriber\n');
      unlinkSync(s.abs('p-file.txt'));
      await s.run();
      assert.equal(readFileSync(s.abs('shared.txt'), 'utf8'), 'federation version\n', 'drift not reverted');
      assert.equal(readFileSync(s.abs('p-file.txt'), 'utf8'), 'from the publisher\n', 'a local deletion was not reverted');
      assert.ok(!existsSync(s.abs('rogue.txt')), 'a local addition stayed in the tree');
      const kept = walkFiles(s.abs('.fedsync/drift')).map((f) => readFileSync(f, 'utf8'));
      assert.ok(kept.includes('DRIFTED on the subscriber\n') && kept.includes('ROGUE file on the subscriber\n'), `drifted content not kept: ${JSON.stringify(kept)}`);
      await x.run();
      await p.run();
      assert.ok(!existsSync(x.abs('rogue.txt')) && readFileSync(x.abs('shared.txt'), 'utf8') === 'federation version\n', 'the subscriber published');
      assert.deepEqual(await fed.listObjects(`journal/${s.id}/`), [], 'the subscriber has a journal');
      // Heads (sealed: read with the federation's keys).
      const keys = await keysOf(fed);
      const hs = await sealedHead(fed, keys, s.id);
      const hx = await sealedHead(fed, keys, x.id);
      const hp = await sealedHead(fed, keys, p.id);
      assert.equal(hs.role, 'subscribe');
      assert.equal(hs.seq, 0, 'the subscriber announces no segment');
      assert.equal(hs.acks[p.id], hp.seq, `the subscriber acks the publisher: ${JSON.stringify(hs)}`);
      assert.equal(hs.acks[x.id], hx.seq, `the subscriber acks X: ${JSON.stringify(hs)}`);
      assert.ok(Date.now() - Date.parse(hs.heartbeat) < 10 * 60_000, `heartbeat ${hs.heartbeat}`);
      assert.equal(hp.role, 'publish');
      assert.deepEqual(hp.acks, {}, 'the publisher reads no journal, so acks none');
    });

    it('(e) no secret in anything fedsync prints or writes, even at trace; state files 0600, state directories 0700', async () => {
      const fed = track(await encryptedFederation(target, ['A', 'B'], { logLevel: 'trace' }));
      const [a, b] = fed.nodes as [FedNode, FedNode];
      writeTree(a.root, { 'doc.txt': 'document\n', 'sub/other.txt': 'other\n' });
      const outputs: CommandResult[] = [];
      const cmd = async (n: FedNode, args: string[]) => {
        const r = await n.fedsync(args);
        outputs.push(r);
        return r;
      };
      assertOk(await cmd(a, ['run']));
      assertOk(await cmd(b, ['run', '--dry-run']));
      assertOk(await cmd(b, ['run']));
      await cmd(a, ['status']);
      await cmd(a, ['status', '--json']);
      await cmd(b, ['doctor']);
      await cmd(a, ['housekeep']);
      await cmd(b, ['history', '--set', fed.setName, 'doc.txt']);
      // Errors too: a wrong passphrase, and a wrong secret key.
      writeFileSync(passFile(b), 'Wrong-Passphrase-Also-Secret-5521\n');
      await cmd(b, ['run']);
      writeFileSync(passFile(b), `${PASSPHRASE}\n`);
      const wrongKey = await b.fedsync(['run'], { env: { AWS_SECRET_ACCESS_KEY: `${target.secretAccessKey}-WRONG-SECRET-77` } });
      outputs.push(wrongKey);
      const secrets = [target.secretAccessKey, PASSPHRASE, 'Wrong-Passphrase-Also-Secret-5521', 'WRONG-SECRET-77'];
      const leaks: string[] = [];
      const search = (what: string, text: string) => {
        for (const s of secrets) if (text.includes(s)) leaks.push(`${JSON.stringify(s.slice(0, 6))}… in ${what}`);
      };
      for (const r of outputs) {
        search(`stdout of fedsync ${r.args.join(' ')}`, r.stdout);
        search(`stderr of fedsync ${r.args.join(' ')}`, r.stderr);
      }
      for (const n of [a, b]) {
        // (fedsync has almost no debug or trace logging yet: "trace" is in effect, and adds little.)
        assert.match(readFileSync(n.config, 'utf8'), /^log_level = "trace"$/m);
        assert.ok(n.logLines().length > 0, `${n.name} logged nothing`);
        for (const f of [n.logFile, ...walkFiles(n.stateDir), ...walkFiles(n.abs('.fedsync'))]) search(f, readFileSync(f).toString('latin1'));
      }
      assert.deepEqual(leaks, [], 'secrets leaked');

      // File modes of what fedsync created (it made the state directories itself).
      const problems: string[] = [];
      for (const n of [a, b]) {
        const setDir = join(n.stateDir, fed.setName);
        for (const d of [n.stateDir, setDir]) {
          const m = statSync(d).mode & 0o777;
          if (m !== 0o700) problems.push(`${relative(fed.dir, d)} is ${m.toString(8)}, not 700`);
        }
        for (const f of [join(setDir, 'manifest.db'), join(setDir, 'status.json')]) {
          const m = statSync(f).mode & 0o777;
          if (m !== 0o600) problems.push(`${relative(fed.dir, f)} is ${m.toString(8)}, not 600`);
        }
        for (const f of walkFiles(n.stateDir)) {
          const m = statSync(f).mode & 0o777;
          if (m & 0o022) problems.push(`${relative(fed.dir, f)} is writable by group or others (${m.toString(8)})`);
        }
        const log = statSync(n.logFile).mode & 0o777;
        if (log & 0o037) problems.push(`${relative(fed.dir, n.logFile)} is ${log.toString(8)}: file names readable by every local user`);
        const tmp = statSync(n.abs('.fedsync/tmp')).mode & 0o777;
        if (tmp & 0o077) problems.push(`${relative(fed.dir, n.abs('.fedsync/tmp'))} is ${tmp.toString(8)}, open to others`);
      }
      assert.deepEqual(problems, []);
    });
  });
}
