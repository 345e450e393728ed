import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DIGITS, isOrderKey, keyAt, keyBetween } from '../js/editor/order.js';

test('the first key sits in the middle of the alphabet', () => {
  assert.equal(keyBetween(null, null), 'V');
});

test('a key between two neighbours sorts strictly between them in byte order', () => {
  const cases = [
    [null, 'V'],
    ['V', null],
    ['A', 'B'],
    ['A', 'C'],
    ['Az', 'B'],
    ['a', 'a1'],
    ['a', 'a01'],
    ['0', '1'],
    ['z', null],
    ['zzzz', null],
    [null, '1'],
    [null, '01'],
    ['V', 'V1'],
    ['9', 'A'],
    ['Z', 'a'],
  ];
  for (const [a, b] of cases) {
    const k = keyBetween(a, b);
    assert.ok(k !== null, `${a}..${b}`);
    assert.ok(isOrderKey(k), `${a}..${b} -> ${k}`);
    if (a !== null) assert.ok(a < k, `${a} < ${k}`);
    if (b !== null) assert.ok(k < b, `${k} < ${b}`);
    assert.notEqual(k.at(-1), '0', `${k} must not end in the lowest digit`);
  }
});

test('random neighbours always get a key between them', () => {
  let seed = 7;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const randomKey = () => {
    let k = '';
    const len = 1 + rand(6);
    for (let i = 0; i < len; i++) k += DIGITS[rand(DIGITS.length)];
    // Keys ending in 0 are legal from other writers; keep some of them.
    return k;
  };
  for (let i = 0; i < 2000; i++) {
    let a = randomKey();
    let b = randomKey();
    if (a === b) continue;
    if (a > b) [a, b] = [b, a];
    const k = keyBetween(a, b);
    if (k === null) {
      // Only impossible when b is a followed by zeros.
      assert.match(b, new RegExp(`^${a}0+$`), `${a}..${b}`);
      continue;
    }
    assert.ok(a < k && k < b, `${a} < ${k} < ${b}`);
  }
});

test('nothing fits between a key and the same key followed by zeros', () => {
  assert.equal(keyBetween('A', 'A0'), null);
  assert.equal(keyBetween('A', 'A00'), null);
});

test('appending many times keeps keys sorted, short and valid', () => {
  const keys = [];
  let last = null;
  for (let i = 0; i < 1000; i++) {
    last = keyBetween(last, null);
    assert.ok(last !== null, `append ${i}`);
    keys.push(last);
  }
  assert.deepEqual([...keys].sort(), keys);
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(keys.every((k) => isOrderKey(k)));
  assert.ok(keys.at(-1).length <= 20, `${keys.at(-1).length} characters after 1000 appends`);
});

test('inserting again and again just after one key stays between it and its neighbour', () => {
  let hi = 'W';
  for (let i = 0; i < 300; i++) {
    const k = keyBetween('V', hi);
    assert.ok(k !== null && 'V' < k && k < hi, `V < ${k} < ${hi}`);
    hi = k;
  }
});

test('repeatedly inserting at the front stays strictly decreasing', () => {
  let first = 'V';
  for (let i = 0; i < 300; i++) {
    const k = keyBetween(null, first);
    assert.ok(k !== null && k < first, `${k} < ${first}`);
    first = k;
  }
});

test('keys out of order or outside the alphabet are refused', () => {
  assert.throws(() => keyBetween('B', 'A'), RangeError);
  assert.throws(() => keyBetween('A', 'A'), RangeError);
  assert.throws(() => keyBetween('a-b', null), RangeError);
});

test('keyAt places an item before, between or after the others', () => {
  const keys = ['B', 'D', 'F'];
  assert.ok(keyAt(keys, 0) < 'B');
  const mid = keyAt(keys, 2);
  assert.ok('D' < mid && mid < 'F');
  assert.ok(keyAt(keys, 3) > 'F');
});

test('keyAt between equal neighbours goes just after them', () => {
  const k = keyAt(['C', 'C'], 1);
  assert.ok(k > 'C');
});
