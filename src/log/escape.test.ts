import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeBytes, escapePath, escapeText } from './escape.js';

describe('escapePath', () => {
  it('leaves ordinary names alone, unicode included', () => {
    for (const p of ['index.html', 'a b/c d.txt', 'café/日本語.txt', 'emoji 😀.png']) assert.equal(escapePath(p), p);
  });

  it('shows control characters, newlines and escape sequences as escapes', () => {
    assert.equal(escapePath('tab\tname.txt'), 'tab\\tname.txt');
    assert.equal(escapePath('new\nline\r.txt'), 'new\\nline\\r.txt');
    assert.equal(escapePath('esc\x1b[31mred.txt'), 'esc\\x1b[31mred.txt');
    assert.equal(escapePath('bell\x07del\x7f'), 'bell\\x07del\\x7f');
    assert.equal(escapePath('c1\u009bx'), 'c1\\u{009b}x');
  });

  it('shows invisible and direction-changing characters as escapes', () => {
    assert.equal(escapePath('evil\u202etxt.exe'), 'evil\\u{202e}txt.exe');
    assert.equal(escapePath('zero\u200bwidth'), 'zero\\u{200b}width');
    assert.equal(escapePath('line\u2028sep'), 'line\\u{2028}sep');
  });

  it('doubles a backslash, so every escape maps back to one name', () => {
    assert.equal(escapePath('back\\slash.txt'), 'back\\\\slash.txt');
    assert.notEqual(escapePath('a\\tb'), escapePath('a\tb'));
  });

  it('escapes lone surrogates, keeps pairs', () => {
    assert.equal(escapePath('x\ud800y'), 'x\\u{d800}y');
    assert.equal(escapePath('x\udc00'), 'x\\u{dc00}');
    assert.equal(escapePath('\ud83d\ude00'), '😀');
  });

  it('never leaves a control character in what it returns', () => {
    let all = '';
    for (let c = 0; c < 0x100; c++) all += String.fromCharCode(c);
    assert.doesNotMatch(escapePath(all), /[\x00-\x1f\x7f-\x9f]/);
    assert.doesNotMatch(escapeText(all), /[\x00-\x1f\x7f-\x9f]/);
  });
});

describe('escapeText', () => {
  it('escapes controls but leaves a backslash in free text', () => {
    assert.equal(escapeText('path contains a backslash: "a\\\\b"\n'), 'path contains a backslash: "a\\\\b"\\n');
  });
});

describe('escapeBytes', () => {
  it('shows valid UTF-8 as escapePath does and each invalid byte as \\xHH', () => {
    assert.equal(escapeBytes(Buffer.from('café\t.txt')), 'café\\t.txt');
    assert.equal(escapeBytes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74])), 'caf\\xe9.t');
    assert.equal(escapeBytes(Buffer.from([0xc0, 0xaf])), '\\xc0\\xaf'); // overlong "/"
    assert.equal(escapeBytes(Buffer.from([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80'); // a surrogate
    assert.equal(escapeBytes(Buffer.from([0xe2, 0x82])), '\\xe2\\x82'); // truncated
    assert.equal(escapeBytes(Buffer.from('😀')), '😀');
  });
});
