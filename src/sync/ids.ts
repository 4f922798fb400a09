import { randomBytes } from 'node:crypto';

// RFC 4648 base32 alphabet, lower-cased: ids appear in store keys and file names.
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A new node id: 128 random bits in base32 (26 characters). */
export function newNodeId(): string {
  const bytes = randomBytes(16);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

const NODE_ID = /^[a-z2-7]{26}$/;

export function isNodeId(s: unknown): s is string {
  return typeof s === 'string' && NODE_ID.test(s);
}
