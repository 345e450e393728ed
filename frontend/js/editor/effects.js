// Effect types and their parameters, as docs/document.md lists them. Only
// used to build controls: the server validates every value.

/**
 * @typedef {object} NumberParam
 * @property {string} name
 * @property {number} min
 * @property {number} max
 * @property {number} default
 *
 * @typedef {object} ChoiceParam
 * @property {string} name
 * @property {string[]} choices
 * @property {string} default
 *
 * @typedef {NumberParam | ChoiceParam} Param
 */

/** @param {string} name @param {number} min @param {number} max @param {number} def @returns {NumberParam} */
const num = (name, min, max, def) => ({ name, min, max, default: def });
const CUTOFF = /** @param {number} def */ (def) => num('cutoff_hz', 10, 40000, def);
const Q = num('q', 0.1, 20, 0.707107);
const SHELF_GAIN = num('gain_db', -24, 24, 0);

/** @type {Record<string, Param[]>} */
export const EFFECT_TYPES = {
  gain: [num('gain_db', -60, 24, 0)],
  highpass: [CUTOFF(80)],
  lowpass: [CUTOFF(12000)],
  low_shelf: [CUTOFF(200), SHELF_GAIN, Q],
  high_shelf: [CUTOFF(6000), SHELF_GAIN, Q],
  peak: [CUTOFF(1000), SHELF_GAIN, Q],
  compressor: [num('threshold_db', -80, 0, 0), num('ratio', 1, 100, 1), num('attack_ms', 0.01, 1000, 1), num('release_ms', 1, 5000, 100)],
  limiter: [num('threshold_db', -60, 0, -1), num('release_ms', 1, 5000, 100)],
  noise_gate: [num('threshold_db', -120, 0, -100), num('ratio', 1, 100, 10), num('attack_ms', 0.01, 1000, 1), num('release_ms', 1, 5000, 100)],
  reverb: [num('room_size', 0, 1, 0.5), num('damping', 0, 1, 0.5), num('wet_level', 0, 1, 0.33), num('dry_level', 0, 1, 0.4), num('width', 0, 1, 1)],
  delay: [num('delay_ms', 0, 5000, 500), num('feedback', 0, 0.99, 0), num('mix', 0, 1, 0.5)],
  chorus: [num('rate_hz', 0, 100, 1), num('depth', 0, 1, 0.25), num('centre_delay_ms', 1, 100, 7), num('feedback', -0.95, 0.95, 0), num('mix', 0, 1, 0.5)],
  phaser: [num('rate_hz', 0, 100, 1), num('depth', 0, 1, 0.5), num('centre_frequency_hz', 10, 40000, 1300), num('feedback', -0.95, 0.95, 0), num('mix', 0, 1, 0.5)],
  distortion: [num('drive_db', 0, 100, 25)],
  bitcrush: [num('bit_depth', 1, 32, 8)],
  clipping: [num('threshold_db', -60, 0, -6)],
  ladder_filter: [
    { name: 'mode', choices: ['lpf12', 'hpf12', 'bpf12', 'lpf24', 'hpf24', 'bpf24'], default: 'lpf12' },
    CUTOFF(200),
    num('resonance', 0, 1, 0),
    num('drive', 1, 100, 1),
  ],
};

/**
 * The parameters of a type, known or not. An unknown type (a newer server)
 * shows the parameters it has, as plain numbers.
 * @param {string} type
 * @param {Record<string, number | string>} params
 * @returns {Param[]}
 */
export function paramsOf(type, params) {
  const known = EFFECT_TYPES[type];
  if (known) return known;
  return Object.entries(params).map(([name, value]) =>
    typeof value === 'string' ? { name, choices: [value], default: value } : num(name, -Infinity, Infinity, value),
  );
}

/**
 * "cutoff_hz" → "cutoff (Hz)" for labels.
 * @param {string} name
 */
export function paramLabel(name) {
  const units = { _hz: 'Hz', _db: 'dB', _ms: 'ms' };
  for (const [suffix, unit] of Object.entries(units)) {
    if (name.endsWith(suffix)) return `${name.slice(0, -suffix.length).replaceAll('_', ' ')} (${unit})`;
  }
  return name.replaceAll('_', ' ');
}
