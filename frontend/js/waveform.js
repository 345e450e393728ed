// Waveform peaks and display formatting. Pure functions only (no DOM access),
// so they run under `node --test` as well as in the browser.

/**
 * BBC audiowaveform JSON, as served by /api/projects/<id>/stems/<id>/peaks.
 * Version 1 files have no `channels` field and are always mono.
 * @typedef {object} Peaks
 * @property {number} [version]
 * @property {number} [channels]
 * @property {number} [sample_rate]
 * @property {number} [samples_per_pixel]
 * @property {number} [bits] 8 or 16
 * @property {number} [length] pixels (not values) in `data`
 * @property {number[]} data per pixel, per channel: min, max
 */

/**
 * One lane per channel, values scaled to -1..1, one entry per canvas column.
 * @typedef {{ min: number[], max: number[] }} Lane
 * @typedef {{ width: number, lanes: Lane[] }} Columns
 */

/**
 * Reduce peaks to exactly `width` columns of min/max per channel.
 *
 * Narrower than the data: each column takes the extreme of the pixels it
 * covers, so short transients never vanish. Wider: each column repeats the
 * pixel it falls in; interpolating would draw detail the data does not have.
 *
 * @param {Peaks} peaks
 * @param {number} width
 * @returns {Columns}
 */
export function reducePeaks(peaks, width) {
  const columns = Math.max(0, Math.floor(width));
  const channels = Math.max(1, Math.floor(peaks.channels ?? 1));
  const scale = peaks.bits === 16 ? 32768 : 128;
  const data = Array.isArray(peaks.data) ? peaks.data : [];
  // Trust the data over `length`: a truncated file must not read past its end.
  const available = Math.floor(data.length / (2 * channels));
  const length = Math.min(available, Math.max(0, Math.floor(peaks.length ?? available)));

  /** @type {Lane[]} */
  const lanes = [];
  for (let ch = 0; ch < channels; ch++) {
    const min = new Array(columns).fill(0);
    const max = new Array(columns).fill(0);
    if (length > 0) {
      for (let x = 0; x < columns; x++) {
        const start = Math.floor((x * length) / columns);
        const end = Math.min(length, Math.max(start + 1, Math.floor(((x + 1) * length) / columns)));
        let lo = Infinity;
        let hi = -Infinity;
        for (let p = start; p < end; p++) {
          const i = (p * channels + ch) * 2;
          if (data[i] < lo) lo = data[i];
          if (data[i + 1] > hi) hi = data[i + 1];
        }
        min[x] = clampUnit(lo / scale);
        max[x] = clampUnit(hi / scale);
      }
    }
    lanes.push({ min, max });
  }
  return { width: columns, lanes };
}

/** @param {number} v */
function clampUnit(v) {
  return Number.isFinite(v) ? Math.min(1, Math.max(-1, v)) : 0;
}

/**
 * Fold all lanes into one: the envelope of every channel.
 * @param {Columns} columns
 * @returns {Columns}
 */
export function mergeLanes(columns) {
  if (columns.lanes.length <= 1) return columns;
  const min = columns.lanes[0].min.slice();
  const max = columns.lanes[0].max.slice();
  for (const lane of columns.lanes.slice(1)) {
    for (let x = 0; x < columns.width; x++) {
      if (lane.min[x] < min[x]) min[x] = lane.min[x];
      if (lane.max[x] > max[x]) max[x] = lane.max[x];
    }
  }
  return { width: columns.width, lanes: [{ min, max }] };
}

/**
 * The zoom level to ask the server for: about one peaks pixel per canvas
 * column. The server answers with the finest level no finer than this.
 * @param {number} durationS
 * @param {number} sampleRate
 * @param {number} width canvas columns (device pixels)
 */
export function pickSamplesPerPixel(durationS, sampleRate, width) {
  const frames = durationS * sampleRate;
  if (!(frames > 0) || !(width > 0)) return 1;
  return Math.max(1, Math.round(frames / width));
}

/**
 * The parts of a 2D context drawWaveform uses, so tests can pass a recorder.
 * @typedef {Pick<CanvasRenderingContext2D,
 *   'clearRect' | 'fillRect' | 'beginPath' | 'rect' | 'fill'> & { fillStyle: any }} DrawContext
 */

/**
 * @typedef {object} DrawStyle
 * @property {string} [color] waveform fill
 * @property {string} [axisColor] centre line of each lane
 * @property {number} [gap] device pixels between stereo lanes
 */

/**
 * Draw min/max columns, one lane per channel (stereo gets two stacked lanes,
 * left on top), each with a hairline centre axis. Every column is at least
 * one device pixel tall so silence still reads as a line, not a gap.
 *
 * @param {DrawContext} ctx
 * @param {Columns} columns from reducePeaks, with width = canvas width
 * @param {number} height canvas height in device pixels
 * @param {DrawStyle} [style]
 */
export function drawWaveform(ctx, columns, height, style = {}) {
  const { color = '#4fd1c5', axisColor = 'rgba(255,255,255,0.12)', gap = 4 } = style;
  const n = columns.lanes.length;
  ctx.clearRect(0, 0, columns.width, height);
  if (n === 0) return;
  const laneHeight = (height - gap * (n - 1)) / n;

  ctx.fillStyle = axisColor;
  for (let l = 0; l < n; l++) {
    const mid = l * (laneHeight + gap) + laneHeight / 2;
    ctx.fillRect(0, Math.floor(mid), columns.width, 1);
  }

  // One path, one fill: thousands of fillRect calls are far slower.
  ctx.fillStyle = color;
  ctx.beginPath();
  columns.lanes.forEach((lane, l) => {
    const top = l * (laneHeight + gap);
    const half = laneHeight / 2;
    const mid = top + half;
    for (let x = 0; x < columns.width; x++) {
      const y1 = mid - lane.max[x] * half;
      const y2 = mid - lane.min[x] * half;
      ctx.rect(x, y1, 1, Math.max(1, y2 - y1));
    }
  });
  ctx.fill();
}

// --- formatting --------------------------------------------------------------

const MINUS_INFINITY = '\u2212\u221e';

/**
 * m:ss.mmm, minutes unbounded (a 75-minute take is 75:00.000).
 * @param {number | null | undefined} seconds
 */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '\u2014';
  const totalMs = Math.round(Math.max(0, seconds) * 1000);
  const m = Math.floor(totalMs / 60000);
  const s = Math.floor((totalMs % 60000) / 1000);
  const ms = totalMs % 1000;
  return `${m}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}`;
}

/**
 * A level in dB with one decimal. null means silence (the server stores
 * -inf as null), hence −∞.
 * @param {number | null | undefined} value
 * @param {string} unit
 */
export function formatLevel(value, unit) {
  if (value == null || !Number.isFinite(value)) {
    return value === Infinity ? `+\u221e ${unit}` : `${MINUS_INFINITY} ${unit}`;
  }
  let text = value.toFixed(1);
  if (text === '-0.0') text = '0.0';
  return `${text} ${unit}`;
}

/** @param {number | null | undefined} value */
export const formatLufs = (value) => formatLevel(value, 'LUFS');
/** @param {number | null | undefined} value */
export const formatDbtp = (value) => formatLevel(value, 'dBTP');
/** @param {number | null | undefined} value */
export const formatDbfs = (value) => formatLevel(value, 'dBFS');

/**
 * Binary units, labelled KB/MB/GB like the server's upload-limit message.
 * @param {number | null | undefined} bytes
 */
export function formatBytes(bytes) {
  if (bytes == null || !Number.isFinite(bytes) || bytes < 0) return '\u2014';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  // Round first, so 1023.96 KB becomes "1.0 MB" rather than "1024 KB".
  if (Number(value.toFixed(1)) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 100 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** @param {number | null | undefined} hz */
export function formatSampleRate(hz) {
  if (hz == null || !Number.isFinite(hz)) return '\u2014';
  return `${Number((hz / 1000).toFixed(3))} kHz`;
}

/** @param {number | null | undefined} n */
export function formatChannels(n) {
  if (n === 1) return 'mono';
  if (n === 2) return 'stereo';
  return n == null ? '\u2014' : `${n} channels`;
}

/** @param {number | null | undefined} fraction 0..1 */
export function formatPercent(fraction) {
  const f = fraction == null || !Number.isFinite(fraction) ? 0 : fraction;
  return `${Math.round(Math.min(1, Math.max(0, f)) * 100)}%`;
}
