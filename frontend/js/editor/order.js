// Fractional indexes (docs/protocol.md §2): tracks and effects sort by an
// `order` string in byte order, so moving one object changes one property
// instead of renumbering its neighbours. Pure; runs under node.
//
// A key is read as a fraction 0.k in base 62 over 0-9A-Za-z, whose ASCII order
// is the digit order. Keys made here never end in the lowest digit "0": a key
// ending in "0" has no room directly below it ("A" < x < "A0" has no answer),
// and avoiding them keeps every gap between our own keys open.

export const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE = DIGITS.length;
export const MAX_KEY_LENGTH = 64;
const KEY_PATTERN = /^[0-9A-Za-z]{1,64}$/;

/** @param {string} key */
export function isOrderKey(key) {
  return typeof key === 'string' && KEY_PATTERN.test(key);
}

/**
 * Byte-order comparison, as the server sorts (`<` on ASCII strings compares
 * code units, which is byte order for this alphabet).
 * @param {string} a
 * @param {string} b
 */
export function compareKeys(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** @param {string} ch */
function digit(ch) {
  const d = DIGITS.indexOf(ch);
  if (d < 0) throw new RangeError(`not an order key character: ${JSON.stringify(ch)}`);
  return d;
}

/**
 * A key strictly between `a` and `b`. `a` null or '' means "before
 * everything", `b` null means "after everything".
 *
 * Returns null when no key exists (b is a plus trailing zeros, like "A" and
 * "A0", which only other writers can produce) or the answer would be longer
 * than the protocol allows; the caller then picks another place.
 *
 * @param {string | null} a
 * @param {string | null} b
 * @returns {string | null}
 */
export function keyBetween(a, b) {
  const lo = a ?? '';
  if (lo !== '' && !isOrderKey(lo)) throw new RangeError(`bad order key: ${JSON.stringify(a)}`);
  if (b !== null && !isOrderKey(b)) throw new RangeError(`bad order key: ${JSON.stringify(b)}`);
  if (b !== null && !(lo < b)) throw new RangeError(`order keys out of order: ${JSON.stringify(a)} >= ${JSON.stringify(b)}`);
  const key = between(lo, b);
  return key !== null && key.length <= MAX_KEY_LENGTH ? key : null;
}

/**
 * @param {string} a lower bound, '' for none (a < b is given)
 * @param {string | null} b upper bound, null for none
 * @returns {string | null}
 */
function between(a, b) {
  // A shared prefix stays as it is; the work happens at the first difference.
  let i = 0;
  if (b !== null) {
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
  }
  const prefix = a.slice(0, i);
  const aRest = a.slice(i);

  if (b === null) {
    // Open above. Stepping the first digit up by one (not halving the gap)
    // makes repeated appends grow a key by one character per 61 appends,
    // not per 6.
    if (aRest === '') return DIGITS[BASE >> 1];
    const da = digit(aRest[0]);
    if (da + 1 < BASE) return prefix + DIGITS[da + 1];
    // At "z": a new digit, starting low so it too has room to step up.
    const rest = aRest.length > 1 ? between(aRest.slice(1), null) : DIGITS[1];
    return rest === null ? null : prefix + DIGITS[da] + rest;
  }

  const bRest = b.slice(i);
  if (bRest === '') return null; // b is a prefix of a, so not above it
  const db = digit(bRest[0]);

  if (aRest === '') {
    // `a` is used up: any non-empty continuation below bRest is above it.
    // Step down by one for the same reason as above.
    if (db >= 2) return prefix + DIGITS[db - 1];
    if (db === 1) return prefix + DIGITS[0] + DIGITS[BASE >> 1];
    // b continues with 0 (only other writers make such keys): follow it down.
    const below = bRest.slice(1);
    if (below === '') return null;
    const rest = between('', below);
    return rest === null ? null : prefix + DIGITS[0] + rest;
  }

  const da = digit(aRest[0]);
  if (db - da >= 2) return prefix + DIGITS[(da + db) >> 1];
  if (db - da === 1) {
    // Adjacent digits: keep a's digit and go above the rest of a, which
    // stays below b because this digit already is.
    const rest = between(aRest.slice(1), null);
    return rest === null ? null : prefix + DIGITS[da] + rest;
  }
  return null;
}

/**
 * The key for an item moved to position `index` of a list sorted by key
 * (the item itself already removed from `keys`).
 * @param {string[]} keys sorted
 * @param {number} index 0..keys.length
 */
export function keyAt(keys, index) {
  const before = index > 0 ? keys[index - 1] : null;
  const after = index < keys.length ? keys[index] : null;
  if (before !== null && after !== null && !(before < after)) {
    // Two neighbours with the same key (allowed: ties sort by id). Going
    // just above `before` is the closest we can get.
    return keyBetween(before, null);
  }
  return keyBetween(before, after);
}
