// Level maths for meters. Pure; runs under node.

export const FLOOR_DB = -120;

/**
 * RMS level of a block of samples, in dBFS (FLOOR_DB for silence).
 * @param {ArrayLike<number>} samples
 */
export function rmsDb(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  if (samples.length === 0 || sum === 0) return FLOOR_DB;
  return Math.max(FLOOR_DB, 10 * Math.log10(sum / samples.length));
}

/**
 * A dBFS level as a meter fraction 0..1 over the range [floor, 0] dB.
 * @param {number} db
 * @param {number} [floor]
 */
export function meterFraction(db, floor = -60) {
  if (!Number.isFinite(db) || db <= floor) return 0;
  return Math.min(1, (db - floor) / -floor);
}

/**
 * "−12.5 dB", "+3 dB", "0 dB", "−∞" below the floor.
 * @param {number} db
 * @param {number} [floor]
 */
export function formatDb(db, floor = -100) {
  if (!Number.isFinite(db) || db <= floor) return '\u2212\u221e dB';
  const rounded = Math.round(db * 10) / 10;
  if (rounded === 0) return '0 dB';
  const text = Math.abs(rounded).toString();
  return `${rounded < 0 ? '\u2212' : '+'}${text} dB`;
}

/**
 * "L 40", "C", "R 100" for a pan in [-1, 1].
 * @param {number} pan
 */
export function formatPan(pan) {
  const p = Math.round(pan * 100);
  if (p === 0) return 'C';
  return p < 0 ? `L ${-p}` : `R ${p}`;
}
