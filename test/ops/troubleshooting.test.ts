// docs/troubleshooting.md keeps up with the code: every warning and error the code logs, and
// every message a command refuses with (UserError, SafetyError, DeletionRailError), appears in
// it. Messages built from parts are checked by their fixed parts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from './support.js';

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** A string or template literal at `src[i]`: where it ends, and its fixed text pieces. */
function readLiteral(src: string, i: number): { end: number; parts: string[] } {
  const q = src[i]!;
  const parts: string[] = [];
  let cur = '';
  let j = i + 1;
  while (j < src.length) {
    const c = src[j]!;
    if (c === '\\') {
      cur += src[j + 1];
      j += 2;
    } else if (c === q) {
      parts.push(cur);
      return { end: j + 1, parts };
    } else if (q === '`' && c === '$' && src[j + 1] === '{') {
      parts.push(cur);
      cur = '';
      j = skipExpression(src, j + 2);
    } else {
      cur += c;
      j++;
    }
  }
  throw new Error(`unterminated literal at ${i}`);
}

/** From inside `${`, to just past its closing brace (nested literals and braces skipped). */
function skipExpression(src: string, j: number): number {
  let depth = 1;
  while (depth > 0) {
    const c = src[j]!;
    if (c === "'" || c === '"' || c === '`') j = readLiteral(src, j).end;
    else {
      if (c === '{') depth++;
      if (c === '}') depth--;
      j++;
    }
  }
  return j;
}

/** The top-level arguments of the call whose `(` is at `open`, each as its source text range. */
function callArgs(src: string, open: number): [number, number][] {
  const args: [number, number][] = [];
  let depth = 0;
  let start = open + 1;
  for (let j = open; j < src.length; ) {
    const c = src[j]!;
    if (c === "'" || c === '"' || c === '`') {
      j = readLiteral(src, j).end;
      continue;
    }
    if (c === '(' || c === '{' || c === '[') depth++;
    if (c === ')' || c === '}' || c === ']') depth--;
    if (depth === 0) {
      args.push([start, j]);
      return args;
    }
    if (c === ',' && depth === 1) {
      args.push([start, j]);
      start = j + 1;
    }
    j++;
  }
  throw new Error('unterminated call');
}

/** Fixed pieces long enough to mean something, without the punctuation that joined them. */
function meaningful(parts: string[]): string[] {
  return parts.map((s) => s.replace(/^[\s/:;,.)\]]+/, '').replace(/[\s:;,(]+$/, '').replace(/\s+/g, ' ')).filter((s) => s.length >= 12);
}

const CALLS: [RegExp, 'first' | 'last'][] = [
  [/\blog\.(?:warn|error|fatal)\(/g, 'last'],
  [/\bnew (?:UserError|SafetyError|DeletionRailError)\(/g, 'first'],
];

describe('docs/troubleshooting.md', () => {
  it('lists every warning, error and refusal the code can print', () => {
    const doc = readFileSync(join(REPO, 'docs', 'troubleshooting.md'), 'utf8').replace(/\\`/g, '`').replace(/\s+/g, ' ');
    const missing: string[] = [];
    let checked = 0;
    for (const file of sources(join(REPO, 'src'))) {
      if (file.includes(join('src', 'ops', 'doctor'))) continue; // the doctor prints its own fixes
      const src = readFileSync(file, 'utf8');
      for (const [re, which] of CALLS) {
        for (const m of src.matchAll(re)) {
          const args = callArgs(src, m.index! + m[0].length - 1);
          const [a, b] = which === 'first' ? args[0]! : args.at(-1)!;
          const text = src.slice(a, b).trim();
          if (!/^['"`]/.test(text)) continue; // a message passed in a variable: checked where it is made
          for (const part of meaningful(readLiteral(text, 0).parts)) {
            checked++;
            if (!doc.includes(part)) missing.push(`${relative(REPO, file)}: ${part}`);
          }
        }
      }
    }
    assert.ok(checked > 30, `only ${checked} messages found: is the extraction broken?`);
    assert.deepEqual(missing, [], 'messages missing from docs/troubleshooting.md');
  });
});
