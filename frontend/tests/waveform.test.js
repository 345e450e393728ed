import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  drawWaveform,
  formatBytes,
  formatChannels,
  formatDbtp,
  formatDuration,
  formatLufs,
  formatPercent,
  formatSampleRate,
  mergeLanes,
  pickSamplesPerPixel,
  reducePeaks,
} from '../js/waveform.js';

/** 8-bit peaks from per-pixel [min, max] pairs of each channel. */
function peaks(channels, pixels) {
  return { version: 2, channels, sample_rate: 48000, samples_per_pixel: 256, bits: 8, length: pixels.length, data: pixels.flat(2) };
}

test('one column per pixel keeps every value, scaled to -1..1', () => {
  const cols = reducePeaks(peaks(1, [[[-128, 127]], [[-64, 64]], [[0, 0]]]), 3);
  assert.equal(cols.width, 3);
  assert.equal(cols.lanes.length, 1);
  assert.deepEqual(cols.lanes[0].min, [-1, -0.5, 0]);
  assert.deepEqual(cols.lanes[0].max, [127 / 128, 0.5, 0]);
});

test('fewer columns than pixels take the extremes of the pixels they cover', () => {
  const data = [[[-10, 10]], [[-100, 5]], [[-3, 3]], [[-1, 120]]];
  const cols = reducePeaks(peaks(1, data), 2);
  assert.deepEqual(cols.lanes[0].min, [-100 / 128, -3 / 128]);
  assert.deepEqual(cols.lanes[0].max, [10 / 128, 120 / 128]);
});

test('a single column covers the whole file', () => {
  const cols = reducePeaks(peaks(1, [[[-10, 10]], [[-100, 5]], [[-3, 64]]]), 1);
  assert.deepEqual(cols.lanes[0].min, [-100 / 128]);
  assert.deepEqual(cols.lanes[0].max, [0.5]);
});

test('uneven reduction covers every pixel exactly once', () => {
  // 5 pixels into 3 columns: the single loud pixel must appear in exactly one column.
  for (let loud = 0; loud < 5; loud++) {
    const data = Array.from({ length: 5 }, (_, i) => [[i === loud ? -128 : 0, i === loud ? 127 : 0]]);
    const cols = reducePeaks(peaks(1, data), 3);
    assert.equal(cols.lanes[0].min.filter((v) => v === -1).length, 1, `loud pixel ${loud}`);
  }
});

test('more columns than pixels repeat each pixel instead of inventing detail', () => {
  const cols = reducePeaks(peaks(1, [[[-128, 0]], [[0, 64]]]), 4);
  assert.deepEqual(cols.lanes[0].min, [-1, -1, 0, 0]);
  assert.deepEqual(cols.lanes[0].max, [0, 0, 0.5, 0.5]);
});

test('non-integer stretch still maps every column to a pixel', () => {
  const cols = reducePeaks(peaks(1, [[[-128, 0]], [[0, 64]], [[-64, 127]]]), 7);
  assert.equal(cols.lanes[0].min.length, 7);
  assert.equal(cols.lanes[0].min[0], -1);
  assert.equal(cols.lanes[0].max[6], 127 / 128);
  assert.ok(cols.lanes[0].max.every((v) => [0, 0.5, 127 / 128].includes(v)));
});

test('stereo data is de-interleaved into one lane per channel', () => {
  // pixel: ch0min, ch0max, ch1min, ch1max
  const data = [
    [[-128, 127], [-2, 2]],
    [[-64, 64], [-32, 32]],
  ];
  const cols = reducePeaks(peaks(2, data), 2);
  assert.equal(cols.lanes.length, 2);
  assert.deepEqual(cols.lanes[0].min, [-1, -0.5]);
  assert.deepEqual(cols.lanes[0].max, [127 / 128, 0.5]);
  assert.deepEqual(cols.lanes[1].min, [-2 / 128, -0.25]);
  assert.deepEqual(cols.lanes[1].max, [2 / 128, 0.25]);
});

test('stereo reduction and stretch keep channels apart', () => {
  const data = [
    [[-128, 0], [0, 64]],
    [[0, 127], [-64, 0]],
  ];
  const narrow = reducePeaks(peaks(2, data), 1);
  assert.deepEqual(narrow.lanes[0].min, [-1]);
  assert.deepEqual(narrow.lanes[0].max, [127 / 128]);
  assert.deepEqual(narrow.lanes[1].min, [-0.5]);
  assert.deepEqual(narrow.lanes[1].max, [0.5]);
  const wide = reducePeaks(peaks(2, data), 4);
  assert.deepEqual(wide.lanes[1].min, [0, 0, -0.5, -0.5]);
  assert.deepEqual(wide.lanes[1].max, [0.5, 0.5, 0, 0]);
});

test('mergeLanes takes the envelope of both channels', () => {
  const data = [
    [[-128, 0], [0, 64]],
    [[0, 32], [-64, 0]],
  ];
  const merged = mergeLanes(reducePeaks(peaks(2, data), 2));
  assert.equal(merged.lanes.length, 1);
  assert.deepEqual(merged.lanes[0].min, [-1, -0.5]);
  assert.deepEqual(merged.lanes[0].max, [0.5, 0.25]);
});

test('16-bit peaks scale by 32768', () => {
  const cols = reducePeaks({ channels: 1, bits: 16, length: 1, data: [-32768, 16384] }, 1);
  assert.deepEqual(cols.lanes[0].min, [-1]);
  assert.deepEqual(cols.lanes[0].max, [0.5]);
});

test('version 1 peaks without a channels field are mono', () => {
  const cols = reducePeaks({ version: 1, bits: 8, length: 2, data: [-128, 127, -64, 64] }, 2);
  assert.equal(cols.lanes.length, 1);
  assert.deepEqual(cols.lanes[0].min, [-1, -0.5]);
});

test('empty or truncated data gives flat columns, never NaN', () => {
  const empty = reducePeaks({ channels: 2, bits: 8, length: 0, data: [] }, 3);
  assert.deepEqual(empty.lanes.map((l) => l.min), [[0, 0, 0], [0, 0, 0]]);
  // length claims 10 pixels but only 1 is present.
  const short = reducePeaks({ channels: 1, bits: 8, length: 10, data: [-64, 64] }, 4);
  assert.deepEqual(short.lanes[0].min, [-0.5, -0.5, -0.5, -0.5]);
  assert.equal(reducePeaks(peaks(1, [[[-1, 1]]]), 0).width, 0);
});

test('pickSamplesPerPixel asks for about one peaks pixel per column', () => {
  assert.equal(pickSamplesPerPixel(10, 48000, 1000), 480);
  assert.equal(pickSamplesPerPixel(1, 44100, 800), 55);
  assert.equal(pickSamplesPerPixel(0.001, 48000, 1000), 1);
  assert.equal(pickSamplesPerPixel(10, 48000, 0), 1);
  assert.equal(pickSamplesPerPixel(NaN, 48000, 100), 1);
});

function recorder() {
  const calls = [];
  const ctx = {
    fillStyle: '',
    clearRect: (...a) => calls.push(['clearRect', ...a]),
    fillRect: (...a) => calls.push(['fillRect', ...a]),
    beginPath: () => calls.push(['beginPath']),
    rect: (...a) => calls.push(['rect', ...a]),
    fill: () => calls.push(['fill']),
  };
  return { ctx, calls };
}

test('drawWaveform draws one bar per column in one fill', () => {
  const { ctx, calls } = recorder();
  drawWaveform(ctx, reducePeaks(peaks(1, [[[-128, 127]], [[0, 0]]]), 2), 100, { gap: 0 });
  const rects = calls.filter((c) => c[0] === 'rect');
  assert.equal(rects.length, 2);
  assert.equal(calls.filter((c) => c[0] === 'fill').length, 1);
  // Full scale spans the lane; silence is still one pixel tall.
  const [, x0, y0, w0, h0] = rects[0];
  assert.deepEqual([x0, w0], [0, 1]);
  assert.ok(Math.abs(y0 - (50 - (127 / 128) * 50)) < 1e-9);
  assert.ok(Math.abs(y0 + h0 - 100) < 1e-9);
  assert.equal(rects[1][4], 1);
});

test('drawWaveform stacks stereo lanes with a gap', () => {
  const { ctx, calls } = recorder();
  const cols = reducePeaks(peaks(2, [[[-128, 127], [-128, 127]]]), 1);
  drawWaveform(ctx, cols, 110, { gap: 10 });
  const rects = calls.filter((c) => c[0] === 'rect');
  assert.equal(rects.length, 2);
  // Lane height (110 - 10) / 2 = 50: left spans 0..50, right 60..110.
  assert.ok(Math.abs(rects[0][2] + rects[0][4] - 50) < 1e-9);
  assert.ok(Math.abs(rects[1][2] + rects[1][4] - 110) < 1e-9);
  assert.ok(rects[1][2] > 60 && rects[1][2] < 61);
});

test('formatDuration is m:ss.mmm', () => {
  assert.equal(formatDuration(0), '0:00.000');
  assert.equal(formatDuration(1.5), '0:01.500');
  assert.equal(formatDuration(61.0234), '1:01.023');
  assert.equal(formatDuration(59.9996), '1:00.000');
  assert.equal(formatDuration(4500), '75:00.000');
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(NaN), '—');
});

test('levels have one decimal and −∞ for silence', () => {
  assert.equal(formatLufs(-14.04), '-14.0 LUFS');
  assert.equal(formatLufs(-23.06), '-23.1 LUFS');
  assert.equal(formatLufs(null), '\u2212\u221e LUFS');
  assert.equal(formatDbtp(-0.96), '-1.0 dBTP');
  assert.equal(formatDbtp(0.31), '0.3 dBTP');
  assert.equal(formatDbtp(-0.04), '0.0 dBTP');
  assert.equal(formatDbtp(undefined), '\u2212\u221e dBTP');
  assert.equal(formatDbtp(-Infinity), '\u2212\u221e dBTP');
});

test('formatBytes uses binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1.0 KB');
  assert.equal(formatBytes(1536), '1.5 KB');
  assert.equal(formatBytes(10 * 1024 * 1024), '10.0 MB');
  assert.equal(formatBytes(250 * 1024 * 1024), '250 MB');
  assert.equal(formatBytes(1024 * 1024 - 1), '1.0 MB');
  assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GB');
  assert.equal(formatBytes(null), '—');
});

test('sample rates, channels and percentages', () => {
  assert.equal(formatSampleRate(44100), '44.1 kHz');
  assert.equal(formatSampleRate(48000), '48 kHz');
  assert.equal(formatSampleRate(22050), '22.05 kHz');
  assert.equal(formatChannels(1), 'mono');
  assert.equal(formatChannels(2), 'stereo');
  assert.equal(formatChannels(6), '6 channels');
  assert.equal(formatPercent(0.426), '43%');
  assert.equal(formatPercent(1.2), '100%');
  assert.equal(formatPercent(null), '0%');
});
