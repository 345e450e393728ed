// Client-chosen object ids (docs/protocol.md §2) and client_op_ids (§3).

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A random id of [A-Za-z0-9]. 12 characters carry about 71 bits: two
 * clients never pick the same one in practice, and ids are never reused.
 *
 * @param {number} [length]
 * @param {(bytes: Uint8Array) => Uint8Array} [fill] source of randomness
 */
export function randomId(length = 12, fill = (bytes) => crypto.getRandomValues(bytes)) {
  let out = '';
  // 62 does not divide 256: drop bytes at or above 248 so each letter is
  // equally likely.
  const limit = 256 - (256 % ALPHABET.length);
  while (out.length < length) {
    const bytes = fill(new Uint8Array(length * 2));
    for (const b of bytes) {
      if (b < limit) out += ALPHABET[b % ALPHABET.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * client_op_ids `${prefix}-${n}`: unique per user and project as long as the
 * prefix is (the connection's session, fixed for the page's lifetime, so
 * edits resent after a reconnect keep their ids).
 */
export class OpIds {
  /** @param {string} prefix */
  constructor(prefix) {
    this.prefix = prefix;
    this.counter = 0;
  }

  next() {
    this.counter += 1;
    return `${this.prefix}-${this.counter}`;
  }
}
