import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FLOOR_DB, rmsDb, meterFraction, formatDb, formatPan } from '../js/jam/levels.js';

test('a full-scale sine measures -3.01 dB RMS, silence the floor', () => {
  const n = 4800;
  const sine = Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * 100 * i) / 48000));
  assert.ok(Math.abs(rmsDb(sine) - -3.0103) < 0.01, String(rmsDb(sine)));
  assert.equal(rmsDb(new Float32Array(128)), FLOOR_DB);
  assert.equal(rmsDb([]), FLOOR_DB);
});

test('a -20 dB square wave measures -20 dB', () => {
  const x = Float32Array.from({ length: 1000 }, (_, i) => (i % 2 ? 0.1 : -0.1));
  assert.ok(Math.abs(rmsDb(x) - -20) < 1e-6);
});

test('meter fraction spans floor to 0 dB and clamps', () => {
  assert.equal(meterFraction(-60), 0);
  assert.equal(meterFraction(-120), 0);
  assert.equal(meterFraction(-30), 0.5);
  assert.equal(meterFraction(0), 1);
  assert.equal(meterFraction(6), 1);
  assert.equal(meterFraction(Number.NaN), 0);
  assert.equal(meterFraction(-20, -40), 0.5);
});

test('decibels and pans read like a mixing desk', () => {
  assert.equal(formatDb(-12.54), '\u221212.5 dB');
  assert.equal(formatDb(3), '+3 dB');
  assert.equal(formatDb(0.01), '0 dB');
  assert.equal(formatDb(-120), '\u2212\u221e dB');
  assert.equal(formatPan(0), 'C');
  assert.equal(formatPan(-0.4), 'L 40');
  assert.equal(formatPan(1), 'R 100');
});
