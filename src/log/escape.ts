/**
 * Paths as a terminal may show them. A name may hold any byte but NUL and `/`: a newline
 * would split an output line in two, an escape sequence would restyle or rewrite the screen,
 * bidirectional controls would reorder what is read. Everything the CLI prints of a path goes
 * through here, so what is printed is one line of visible text and maps back to one name.
 */

/** Characters shown as `\u{...}`: C1 controls, invisible and direction-changing format characters, lone surrogates. */
const UNICODE_UNSAFE = /[\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function escapeChar(ch: string, backslash: boolean): string {
  switch (ch) {
    case '\\':
      return backslash ? '\\\\' : ch;
    case '\n':
      return '\\n';
    case '\t':
      return '\\t';
    case '\r':
      return '\\r';
  }
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20 || cp === 0x7f) return `\\x${hex(cp, 2)}`;
  if (UNICODE_UNSAFE.test(ch)) return `\\u{${hex(cp, 4)}}`;
  return ch;
}

function escapeWith(s: string, backslash: boolean): string {
  // Fast path: most names need nothing.
  if (!/[\\\x00-\x1f\x7f]/.test(s) && !UNICODE_UNSAFE.test(s)) return s;
  let out = '';
  // for..of walks code points; a lone surrogate comes alone and is escaped.
  for (const ch of s) out += escapeChar(ch, backslash);
  return out;
}

/**
 * A path for display: control characters as `\n`, `\t`, `\xHH`, other invisible or
 * reordering characters as `\u{HHHH}`, and a backslash doubled so the escapes stay
 * unambiguous (`back\slash.txt` shows as `back\\slash.txt`).
 */
export function escapePath(p: string): string {
  return escapeWith(p, true);
}

/**
 * Free text that may contain paths (an error message): the same escapes, but a backslash is
 * left as it is, since the text is no single name to map back.
 */
export function escapeText(s: string): string {
  return escapeWith(s, false);
}

const fatal = new TextDecoder('utf-8', { fatal: true });

/** A name read from disk as bytes: valid UTF-8 as escapePath shows it, each invalid byte as `\xHH`. */
export function escapeBytes(b: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const lead = b[i]!;
    const n = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    let ch: string | null = null;
    if (n > 0 && i + n <= b.length) {
      try {
        ch = fatal.decode(b.subarray(i, i + n));
      } catch {
        ch = null;
      }
    }
    if (ch === null) {
      out += `\\x${hex(lead, 2)}`;
      i += 1;
    } else {
      out += escapePath(ch);
      i += n;
    }
  }
  return out;
}
