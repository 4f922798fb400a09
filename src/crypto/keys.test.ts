import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { blobName, newEncryption, openEncryption, PassphraseError, readPassphrase, type EncryptionParams } from './keys.js';

const dir = mkdtempSync(join(tmpdir(), 'fedsync-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// scrypt at the production cost takes ~100 ms: one federation's parameters serve most tests.
const PASS = 'correct horse battery staple';
const made = newEncryption(PASS);
const WHERE = 's3://bucket/prefix/www/format.json';

function passFile(name: string, text: string, mode: number): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
}

function throwsPassphrase(fn: () => unknown, pattern: RegExp): PassphraseError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PassphraseError, `expected a PassphraseError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes('\n'), `the message must be one line: ${JSON.stringify(caught.message)}`);
  return caught;
}

describe('key derivation', () => {
  it('records what a node needs to derive and check the keys, and nothing secret', () => {
    const p = made.params;
    assert.equal(p.kdf, 'scrypt');
    assert.equal(p.cipher, 'aes-256-gcm');
    assert.equal(p.names, 'hmac-sha256');
    assert.ok(p.n >= 2 ** 14, `scrypt N=${p.n} is too cheap`);
    assert.equal(Buffer.from(p.salt, 'base64').length, 16);
    assert.equal(Buffer.from(p.check, 'base64').length, 32);
    const text = JSON.stringify(p);
    assert.ok(!text.includes(PASS));
    for (const k of Object.values(made.keys)) assert.ok(!text.includes(k.toString('base64')) && !text.includes(k.toString('hex')));
  });

  it('gives the same keys on every node with the same passphrase, one key per purpose', () => {
    const keys = openEncryption(PASS, made.params, WHERE);
    assert.deepEqual(keys, made.keys);
    const all = Object.values(keys).map((k) => k.toString('hex'));
    assert.equal(new Set(all).size, 3, 'contents, names and meta keys must differ');
    for (const k of Object.values(keys)) assert.equal(k.length, 32);
  });

  it('a new federation gets a new salt, so the same passphrase gives other keys', () => {
    const other = newEncryption(PASS);
    assert.notEqual(other.params.salt, made.params.salt);
    assert.notDeepEqual(other.keys, made.keys);
  });

  it('normalises the passphrase (NFC), so nodes typing it differently still agree', () => {
    const composed = newEncryption('caf\u00e9');
    assert.deepEqual(openEncryption('cafe\u0301', composed.params, WHERE), composed.keys);
  });

  it('a wrong passphrase is a PassphraseError with a one-line message that reveals nothing', () => {
    for (const wrong of ['correct horse battery stapl', `${PASS} `, '', 'x'.repeat(1000)]) {
      const err = throwsPassphrase(() => openEncryption(wrong, made.params, WHERE), /wrong passphrase for s3:\/\/bucket\/prefix\/www\/format\.json/);
      assert.ok(!err.message.includes(PASS.slice(0, 8)), 'the message must not quote a passphrase');
      if (wrong) assert.ok(!err.message.includes(wrong), 'the message must not quote a passphrase');
    }
  });

  it('a tampered key check or salt reads as a wrong passphrase', () => {
    const check = Buffer.from(made.params.check, 'base64');
    check[0]! ^= 1;
    throwsPassphrase(() => openEncryption(PASS, { ...made.params, check: check.toString('base64') }, WHERE), /wrong passphrase/);
    throwsPassphrase(() => openEncryption(PASS, { ...made.params, check: '' }, WHERE), /wrong passphrase/);
    const salt = Buffer.from(made.params.salt, 'base64');
    salt[3]! ^= 0x80;
    throwsPassphrase(() => openEncryption(PASS, { ...made.params, salt: salt.toString('base64') }, WHERE), /wrong passphrase/);
  });

  it('refuses parameters it does not know or that would weaken or exhaust it', () => {
    const p: EncryptionParams = made.params;
    throwsPassphrase(() => openEncryption(PASS, { ...p, cipher: 'chacha20' as 'aes-256-gcm' }, WHERE), /does not know; upgrade fedsync/);
    throwsPassphrase(() => openEncryption(PASS, { ...p, kdf: 'pbkdf2' as 'scrypt' }, WHERE), /does not know/);
    throwsPassphrase(() => openEncryption(PASS, { ...p, chunk: 4096 }, WHERE), /does not know/);
    throwsPassphrase(() => openEncryption(PASS, { ...p, names: 'sha256' as 'hmac-sha256' }, WHERE), /does not know/);
    // A store writer lowering N to make guessing cheap, or raising it to exhaust memory.
    for (const bad of [{ n: 2 }, { n: 2 ** 30 }, { r: 0 }, { r: 1000 }, { p: 0 }, { p: 1e6 }, { n: Number.NaN }]) {
      throwsPassphrase(() => openEncryption(PASS, { ...p, ...bad }, WHERE), /implausible key derivation parameters/);
    }
  });
});

describe('blob names', () => {
  const digest = 'a'.repeat(64);
  it('are stable for one key, look like blob keys, and hide the digest', () => {
    const name = blobName(made.keys, digest);
    assert.equal(name, blobName(openEncryption(PASS, made.params, WHERE), digest));
    assert.match(name, /^blobs\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/);
    assert.ok(!name.includes(digest.slice(0, 16)));
    assert.notEqual(name, `blobs/${digest.slice(0, 2)}/${digest}`);
  });

  it('differ between keys (another federation or passphrase) and between digests', () => {
    const other = newEncryption(PASS).keys;
    assert.notEqual(blobName(other, digest), blobName(made.keys, digest));
    assert.notEqual(blobName(made.keys, 'b'.repeat(64)), blobName(made.keys, digest));
    // Only the names key matters: the contents and meta keys are not the name key.
    assert.notEqual(blobName({ ...made.keys, names: made.keys.contents }, digest), blobName(made.keys, digest));
    assert.equal(blobName({ ...made.keys, contents: Buffer.alloc(32), meta: Buffer.alloc(32) }, digest), blobName(made.keys, digest));
  });
});

describe('passphrase file', () => {
  it('reads the passphrase without its trailing newline', () => {
    assert.equal(readPassphrase(passFile('p1', 'hunter2\n', 0o600), {}), 'hunter2');
    assert.equal(readPassphrase(passFile('p2', 'hunter2\r\n', 0o400), {}), 'hunter2');
    assert.equal(readPassphrase(passFile('p3', ' spaces inside and out ', 0o600), {}), ' spaces inside and out ');
    assert.equal(readPassphrase(passFile('p4', 'two\nlines\n', 0o600), {}), 'two\nlines');
  });

  it('refuses a file readable or writable by group or others, and says how to fix it', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o777]) {
      const f = passFile(`open-${mode.toString(8)}`, 'hunter2\n', mode);
      const err = throwsPassphrase(() => readPassphrase(f, {}), new RegExp(`readable by group or others \\(mode ${mode.toString(8)}\\); run \`chmod 600 `));
      assert.ok(!err.message.includes('hunter2'));
    }
  });

  it('refuses a missing or empty file with a one-line error', () => {
    throwsPassphrase(() => readPassphrase(join(dir, 'nope'), {}), /does not exist or cannot be read/);
    throwsPassphrase(() => readPassphrase(passFile('empty', '', 0o600), {}), /is empty/);
    throwsPassphrase(() => readPassphrase(passFile('newline', '\n', 0o600), {}), /is empty/);
  });

  it('falls back to $FEDSYNC_PASSPHRASE; the file wins when both are set; neither means no encryption', () => {
    assert.equal(readPassphrase(undefined, { FEDSYNC_PASSPHRASE: 'from-env' }), 'from-env');
    assert.equal(readPassphrase(passFile('both', 'from-file', 0o600), { FEDSYNC_PASSPHRASE: 'from-env' }), 'from-file');
    assert.equal(readPassphrase(undefined, {}), undefined);
    assert.equal(readPassphrase(undefined, { FEDSYNC_PASSPHRASE: '' }), undefined);
  });
});
