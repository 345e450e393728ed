// Timeline arithmetic: clip lengths, drags, trims, splits, ordering and the
// part of a stem's peaks a clip shows. Pure; runs under node.

import { keyBetween } from './order.js';

/**
 * @typedef {import('./state.js').DocState} DocState
 * @typedef {import('./state.js').Clip} Clip
 * @typedef {import('./state.js').Track} Track
 * @typedef {import('./state.js').Effect} Effect
 * @typedef {import('./state.js').Op} Op
 * @typedef {import('../waveform.js').Peaks} Peaks
 */

/** User drags land on a 10 ms grid. */
export const SNAP_S = 0.01;
/** Trims never make a clip shorter than this. */
export const MIN_CLIP_S = 0.05;
/** Shown for a clip whose stem length is unknown (its stem was deleted). */
export const UNKNOWN_LENGTH_S = 10;

/** @param {number} t */
export function snap(t) {
  // Rounding through the integer count of steps keeps 4.5 as 4.5, not 4.500000001.
  return Math.round(t / SNAP_S) / (1 / SNAP_S);
}

/**
 * Derived times (splits, trims) rounded to the microsecond, so float noise
 * (0.1 + 0.2) never reaches the document.
 * @param {number} t
 */
export function tidy(t) {
  return Math.round(t * 1e6) / 1e6;
}

/**
 * The stem id of a clip source "stem:<id>".
 * @param {string} source
 */
export function stemIdOf(source) {
  const m = /^stem:(\d+)$/.exec(source);
  return m ? Number(m[1]) : null;
}

/**
 * How long a clip plays on the timeline.
 * @param {Pick<Clip, 'offset' | 'duration'>} clip
 * @param {number | null | undefined} sourceS the stem's length, if known
 */
export function clipLength(clip, sourceS) {
  const rest = sourceS != null && sourceS > 0 ? Math.max(0, sourceS - clip.offset) : null;
  if (clip.duration != null) return rest != null ? Math.min(clip.duration, rest) : clip.duration;
  return rest ?? UNKNOWN_LENGTH_S;
}

/**
 * Start after dragging a clip's body by `dt` seconds.
 * @param {number} start
 * @param {number} dt
 */
export function movedStart(start, dt) {
  return Math.max(0, snap(start + dt));
}

/**
 * Properties after dragging a clip's left edge by `dt` seconds: start and
 * offset move together (the audio stays where it was on the timeline), and
 * a set duration shrinks by as much. Clamped so start and offset stay ≥ 0
 * and the clip keeps MIN_CLIP_S.
 * @param {Pick<Clip, 'start' | 'offset' | 'duration'>} clip
 * @param {number} dt
 * @param {number | null | undefined} sourceS
 * @returns {{ start: number, offset: number, duration?: number }}
 */
export function trimLeft(clip, dt, sourceS) {
  const length = clipLength(clip, sourceS);
  let delta = snap(clip.start + dt) - clip.start;
  delta = Math.max(delta, -clip.start, -clip.offset);
  delta = Math.min(delta, length - MIN_CLIP_S);
  /** @type {{ start: number, offset: number, duration?: number }} */
  const props = { start: tidy(clip.start + delta), offset: tidy(clip.offset + delta) };
  if (clip.duration != null) props.duration = tidy(length - delta);
  return props;
}

/**
 * Duration after dragging a clip's right edge by `dt` seconds, kept inside
 * the source.
 * @param {Pick<Clip, 'start' | 'offset' | 'duration'>} clip
 * @param {number} dt
 * @param {number | null | undefined} sourceS
 */
export function trimRight(clip, dt, sourceS) {
  const length = clipLength(clip, sourceS);
  const end = snap(clip.start + length + dt);
  let duration = Math.max(MIN_CLIP_S, end - clip.start);
  if (sourceS != null && sourceS > 0) duration = Math.min(duration, sourceS - clip.offset);
  return tidy(duration);
}

/**
 * Split a clip at timeline time `at`: the clip ends there and a new clip
 * carries on with the rest of the audio. Fades stay at the outer ends.
 * Returns null when `at` is not strictly inside the clip.
 * @param {string} id
 * @param {Clip} clip
 * @param {number} at
 * @param {string} newId
 * @param {number | null | undefined} sourceS
 * @returns {Op[] | null}
 */
export function splitOps(id, clip, at, newId, sourceS) {
  const length = clipLength(clip, sourceS);
  const head = tidy(at - clip.start);
  if (!(head >= MIN_CLIP_S / 2) || !(length - head >= MIN_CLIP_S / 2)) return null;
  /** @type {Record<string, any>} */
  const first = { duration: head };
  if (clip.fade_out) first.fade_out = 0;
  return [
    { op: 'set', kind: 'clip', id, props: first },
    {
      op: 'create',
      kind: 'clip',
      id: newId,
      props: {
        track: clip.track,
        source: clip.source,
        start: tidy(at),
        offset: tidy(clip.offset + head),
        duration: clip.duration == null ? null : tidy(length - head),
        gain_db: clip.gain_db,
        fade_in: 0,
        fade_out: clip.fade_out,
      },
    },
  ];
}

/**
 * Objects with an `order`, sorted as the server sorts them: by order in byte
 * order, then by id.
 * @template {{ order: string }} T
 * @param {Record<string, T>} objects
 * @param {(item: T) => boolean} [keep]
 * @returns {[string, T][]}
 */
export function sortedByOrder(objects, keep = () => true) {
  return Object.entries(objects)
    .filter(([, o]) => keep(o))
    .sort(([ia, a], [ib, b]) => (a.order < b.order ? -1 : a.order > b.order ? 1 : ia < ib ? -1 : ia > ib ? 1 : 0));
}

/**
 * The order key that moves item `id` by `step` places (-1 up, +1 down)
 * within `sorted`; null when it cannot move.
 * @param {[string, { order: string }][]} sorted
 * @param {string} id
 * @param {number} step
 */
export function reorderKey(sorted, id, step) {
  const from = sorted.findIndex(([i]) => i === id);
  const to = from + step;
  if (from < 0 || to < 0 || to >= sorted.length) return null;
  const rest = sorted.filter(([i]) => i !== id).map(([, o]) => o.order);
  const before = to > 0 ? rest[to - 1] : null;
  const after = to < rest.length ? rest[to] : null;
  if (before !== null && after !== null && !(before < after)) return null;
  return keyBetween(before, after);
}

/**
 * An order key after every existing one.
 * @template {{ order: string }} T
 * @param {Record<string, T>} objects
 * @param {(item: T) => boolean} [keep]
 */
export function appendKey(objects, keep) {
  const sorted = sortedByOrder(objects, keep);
  const last = sorted.length ? sorted[sorted.length - 1][1].order : null;
  return keyBetween(last, null) ?? 'z';
}

/**
 * The end of the song: where the last clip stops.
 * @param {DocState} state
 * @param {(stemId: number | null) => number | null | undefined} sourceLength
 */
export function songEnd(state, sourceLength) {
  let end = 0;
  for (const clip of Object.values(state.clip)) {
    end = Math.max(end, clip.start + clipLength(clip, sourceLength(stemIdOf(clip.source))));
  }
  return end;
}

/**
 * The slice of a stem's peaks between two source times, as peaks of their
 * own (for reducePeaks). Pixel positions come from the peaks' own rate when
 * they carry one, else from the stem's length.
 * @param {Peaks} peaks
 * @param {number} fromS
 * @param {number} toS
 * @param {number} sourceS
 * @returns {Peaks}
 */
export function slicePeaks(peaks, fromS, toS, sourceS) {
  const channels = Math.max(1, Math.floor(peaks.channels ?? 1));
  const data = Array.isArray(peaks.data) ? peaks.data : [];
  const total = Math.min(Math.floor(data.length / (2 * channels)), peaks.length ?? Infinity);
  const perSecond =
    peaks.sample_rate && peaks.samples_per_pixel ? peaks.sample_rate / peaks.samples_per_pixel : sourceS > 0 ? total / sourceS : 0;
  const first = Math.max(0, Math.min(total, Math.floor(fromS * perSecond)));
  const last = Math.max(first, Math.min(total, Math.ceil(toS * perSecond)));
  return {
    ...peaks,
    channels,
    length: last - first,
    data: data.slice(first * 2 * channels, last * 2 * channels),
  };
}

/**
 * Bar lines for the ruler: seconds of each bar start from `0` to `until`,
 * every `every` bars so labels do not crowd.
 * @param {number} tempoBpm
 * @param {[number, number]} timeSignature
 * @param {number} until seconds
 * @param {number} pxPerSecond
 * @param {number} [minGapPx]
 * @returns {{ bar: number, time: number }[]}
 */
export function barTicks(tempoBpm, timeSignature, until, pxPerSecond, minGapPx = 56) {
  const [beats, unit] = timeSignature;
  const barS = (60 / tempoBpm) * beats * (4 / unit);
  if (!(barS > 0) || !(pxPerSecond > 0)) return [];
  let every = 1;
  while (barS * every * pxPerSecond < minGapPx) every *= 2;
  const ticks = [];
  for (let bar = 0; bar * barS <= until; bar += every) ticks.push({ bar: bar + 1, time: bar * barS });
  return ticks;
}

/**
 * m:ss.cc for the timeline.
 * @param {number} seconds
 */
export function formatTime(seconds) {
  const cs = Math.round(Math.max(0, seconds) * 100);
  const m = Math.floor(cs / 6000);
  const s = Math.floor((cs % 6000) / 100);
  return `${m}:${String(s).padStart(2, '0')}.${String(cs % 100).padStart(2, '0')}`;
}
