// The timeline: a ruler (bars, markers, comment pins, playheads) over one
// lane per track, clips as absolutely positioned elements drawn from their
// stem's peaks. Clips are DOM elements (not one canvas) so each can take the
// pointer, carry data attributes and outline others' selections cheaply.

import { api } from '../api.js';
import { h, replaceChildren } from '../dom.js';
import { drawWaveform, pickSamplesPerPixel, reducePeaks } from '../waveform.js';
import { GESTURE_INTERVAL_MS, throttle } from './gestures.js';
import { reconcile } from './keyed.js';
import { projectOf } from './state.js';
import {
  barTicks,
  clipLength,
  formatTime,
  movedStart,
  slicePeaks,
  snap,
  songEnd,
  sortedByOrder,
  stemIdOf,
  trimLeft,
  trimRight,
} from './clipmath.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 * @typedef {import('./state.js').Clip} Clip
 * @typedef {import('./state.js').Track} Track
 * @typedef {import('../waveform.js').Peaks} Peaks
 *
 * @typedef {object} Drag
 * @property {string} id
 * @property {'move' | 'trim-left' | 'trim-right'} mode
 * @property {Clip} clip the clip as it was when the drag began
 * @property {number} x
 * @property {number} y
 * @property {boolean} moved
 * @property {boolean} gestured a gesture went out, so a cancel must be said
 * @property {Record<string, any>} props what the drag would set now
 * @property {ReturnType<typeof throttle<[Record<string, any>]>>} gesture
 */

export const DEFAULT_PX_PER_SECOND = 20;
const MIN_PX_PER_SECOND = 2;
const MAX_PX_PER_SECOND = 400;
/** Movement below this (px) is a click that selects, not a drag. */
const DRAG_THRESHOLD_PX = 2;
/** Canvas backing stores wider than this fail in some browsers; CSS stretches the rest. */
const MAX_CANVAS_PX = 16384;
/** Empty timeline shown after the last clip, so there is room to drag. */
const TAIL_S = 30;
const MIN_LENGTH_S = 120;

/**
 * Peaks by URL with the samples-per-pixel asked for: a zoom refetches only
 * when it needs finer data than the cached copy has.
 * @type {Map<string, { spp: number, peaks: Promise<Peaks> }>}
 */
const peaksCache = new Map();

/**
 * @param {string} url
 * @param {number} spp
 */
function loadPeaks(url, spp) {
  const cached = peaksCache.get(url);
  if (cached && cached.spp <= spp * 1.5) return cached.peaks;
  const sep = url.includes('?') ? '&' : '?';
  const peaks = /** @type {Promise<Peaks>} */ (api.get(`${url}${sep}samples_per_pixel=${spp}`));
  peaksCache.set(url, { spp, peaks });
  peaks.catch(() => {
    // The next draw tries again rather than keeping the failure.
    if (peaksCache.get(url)?.peaks === peaks) peaksCache.delete(url);
  });
  return peaks;
}

/**
 * @param {EditorContext} ctx
 * @param {HTMLElement} root #timeline, the horizontal scroller
 */
export function createTimeline(ctx, root) {
  if (!(Number(root.dataset.pxPerSecond) > 0)) root.dataset.pxPerSecond = String(DEFAULT_PX_PER_SECOND);
  const ruler = h('div', { class: 'ruler', title: 'Click to move the playhead' });
  const lanes = h('div', { id: 'lanes', class: 'lanes' });
  const remoteHeads = h('div', { class: 'remote-playheads', 'aria-hidden': 'true' });
  const playhead = h('div', { id: 'playhead', class: 'playhead-line', 'aria-hidden': 'true' });
  const content = h('div', { class: 'timeline-content' }, ruler, lanes, remoteHeads, playhead);
  root.append(content);

  /** @type {Map<string, HTMLElement>} */
  const clipEls = new Map();
  /** @type {Drag | null} */
  let drag = null;

  const pps = () => ctx.pxPerSecond();

  /** @param {number} clientX @param {Element} el */
  const timeAt = (clientX, el) => Math.max(0, snap((clientX - el.getBoundingClientRect().left) / pps()));

  ruler.addEventListener('pointerdown', (e) => {
    const target = /** @type {Element} */ (e.target);
    const pin = target.closest('.comment-pin');
    if (pin instanceof HTMLElement && pin.dataset.commentId) {
      ctx.focusComment(pin.dataset.commentId);
      return;
    }
    const marker = target.closest('.marker-flag');
    if (marker instanceof HTMLElement && marker.dataset.time) {
      ctx.setPlayhead(Number(marker.dataset.time));
      return;
    }
    ctx.setPlayhead(timeAt(e.clientX, ruler));
  });

  // --- lanes ---------------------------------------------------------------------

  /** @param {[string, Track]} item */
  function createLane([id]) {
    const lane = h('div', { class: 'lane', dataset: { trackId: id } });
    lane.addEventListener('pointerdown', (e) => {
      // Empty lane space: move the playhead there and drop the selection.
      if (e.target !== lane) return;
      ctx.setPlayhead(timeAt(e.clientX, lane));
      ctx.select([]);
    });
    return lane;
  }

  /** @param {HTMLElement} lane @param {[string, Track]} item */
  function updateLane(lane, [, track]) {
    lane.classList.toggle('muted-track', track.mute);
    lane.classList.toggle('soloed-track', track.solo);
    lane.setAttribute('aria-label', `Lane of ${track.name}`);
  }

  /** @param {string} trackId */
  function laneOf(trackId) {
    for (const lane of lanes.children) {
      if (lane instanceof HTMLElement && lane.dataset.trackId === trackId) return lane;
    }
    return null;
  }

  /** @param {number} clientY */
  function laneAtY(clientY) {
    for (const lane of lanes.children) {
      if (!(lane instanceof HTMLElement)) continue;
      const r = lane.getBoundingClientRect();
      if (clientY >= r.top && clientY < r.bottom) return lane;
    }
    return null;
  }

  // --- clips ---------------------------------------------------------------------

  /** @param {string} id */
  function createClip(id) {
    const el = h(
      'div',
      { class: 'clip', dataset: { clipId: id }, tabindex: 0 },
      h('canvas', { class: 'clip-waveform', dataset: { drawn: 'false' }, 'aria-hidden': 'true' }),
      h('span', { class: 'clip-label' }),
      h('span', { class: 'clip-handle clip-handle-left', title: 'Drag to trim the start', 'aria-hidden': 'true' }),
      h('span', { class: 'clip-handle clip-handle-right', title: 'Drag to trim the end', 'aria-hidden': 'true' }),
    );
    el.addEventListener('pointerdown', (e) => beginDrag(e, id, el));
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        ctx.select([id]);
      }
    });
    clipEls.set(id, el);
    return el;
  }

  /**
   * @param {HTMLElement} el
   * @param {number} start
   * @param {number} length
   */
  function place(el, start, length) {
    el.style.left = `${start * pps()}px`;
    el.style.width = `${Math.max(2, length * pps())}px`;
  }

  /**
   * @param {HTMLElement} el
   * @param {string} id
   * @param {Clip} clip
   */
  function updateClip(el, id, clip) {
    const stemId = stemIdOf(clip.source);
    const stem = stemId === null ? undefined : ctx.stems.get(stemId);
    const length = clipLength(clip, ctx.sourceLength(stemId));
    el.dataset.trackId = clip.track;
    el.dataset.start = String(clip.start);
    el.dataset.duration = clip.duration === null ? '' : String(clip.duration);
    el.dataset.offset = String(clip.offset);
    const name = stem?.name ?? `missing stem (${clip.source})`;
    const label = /** @type {HTMLElement} */ (el.querySelector('.clip-label'));
    label.textContent = name;
    el.setAttribute('aria-label', `Clip ${name} at ${formatTime(clip.start)}`);
    el.title = `${name}\n${formatTime(clip.start)} – ${formatTime(clip.start + length)}`;
    el.classList.toggle('selected', ctx.selection().has(id));
    el.classList.toggle('readonly', !ctx.canEdit());

    // Others' selections and drags, in their colours.
    const by = ctx.presence.selectedBy(id);
    el.dataset.selectedBy = by.map((p) => p.session).join(' ');
    const dragger = ctx.gestures.sessionOf('clip', id);
    const colours = by.map((p) => p.user.colour);
    const draggerColour = dragger ? ctx.presence.sessions.get(dragger)?.user.colour : undefined;
    if (draggerColour && !colours.includes(draggerColour)) colours.unshift(draggerColour);
    el.style.boxShadow = colours.map((c, i) => `0 0 0 ${2 * (i + 1)}px ${c}`).join(', ');
    el.classList.toggle('remote-drag', dragger !== null);

    if (drag && drag.id === id) return; // the pointer owns its geometry until release
    const lane = laneOf(clip.track);
    if (!lane) {
      el.remove();
      return;
    }
    if (el.parentElement !== lane) lane.append(el);
    place(el, clip.start, length);
    void drawClip(el, clip, length, stem);
  }

  /**
   * @param {HTMLElement} el
   * @param {Clip} clip
   * @param {number} length seconds shown
   * @param {import('../api.js').Stem | undefined} stem
   */
  async function drawClip(el, clip, length, stem) {
    const canvas = el.querySelector('canvas.clip-waveform');
    if (!(canvas instanceof HTMLCanvasElement)) return;
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.min(MAX_CANVAS_PX, Math.round(length * pps() * dpr)));
    const height = Math.max(1, Math.round((canvas.clientHeight || 64) * dpr));
    const url = stem?.status === 'ready' ? stem.peaks_url : null;
    const sig = `${url}|${clip.offset}|${length}|${width}|${height}`;
    if (canvas.dataset.sig === sig) return;
    canvas.dataset.sig = sig;
    if (!stem || !url) {
      canvas.dataset.drawn = 'false';
      return;
    }
    let peaks;
    try {
      peaks = await loadPeaks(url, pickSamplesPerPixel(stem.duration_s, stem.sample_rate, stem.duration_s * pps() * dpr));
    } catch {
      if (canvas.dataset.sig === sig) {
        canvas.dataset.drawn = 'error';
        canvas.dataset.sig = ''; // try again on the next render
      }
      return;
    }
    if (canvas.dataset.sig !== sig || !canvas.isConnected) return; // superseded meanwhile
    const g = canvas.getContext('2d');
    if (!g) return;
    canvas.width = width;
    canvas.height = height;
    const css = getComputedStyle(canvas);
    const part = slicePeaks(peaks, clip.offset, clip.offset + length, stem.duration_s);
    drawWaveform(g, reducePeaks(part, width), height, {
      color: css.getPropertyValue('--clip-wave').trim() || undefined,
      axisColor: css.getPropertyValue('--wave-axis').trim() || undefined,
      gap: Math.round(2 * dpr),
    });
    canvas.dataset.drawn = 'true';
  }

  // --- dragging ------------------------------------------------------------------------

  /**
   * @param {PointerEvent} e
   * @param {string} id
   * @param {HTMLElement} el
   */
  function beginDrag(e, id, el) {
    if (e.button !== 0) return;
    const clip = ctx.doc().clip[id];
    if (!clip) return;
    if (e.shiftKey || e.ctrlKey || e.metaKey) {
      const next = new Set(ctx.selection());
      if (next.has(id)) next.delete(id);
      else next.add(id);
      ctx.select(next);
      return;
    }
    if (!ctx.selection().has(id) || ctx.selection().size !== 1) ctx.select([id]);
    if (!ctx.canEdit()) return;
    e.preventDefault();
    const target = /** @type {Element} */ (e.target);
    const mode = target.classList.contains('clip-handle-left')
      ? 'trim-left'
      : target.classList.contains('clip-handle-right')
        ? 'trim-right'
        : 'move';
    drag = {
      id,
      mode,
      clip: { ...clip },
      x: e.clientX,
      y: e.clientY,
      moved: false,
      gestured: false,
      props: {},
      gesture: throttle((/** @type {Record<string, any>} */ props) => {
        if (ctx.send({ type: 'gesture', kind: 'clip', id, props }) && drag?.id === id) drag.gestured = true;
      }, GESTURE_INTERVAL_MS),
    };
    el.classList.add('dragging');
    window.addEventListener('pointermove', onMove);
    window.addEventListener('pointerup', onUp);
    window.addEventListener('pointercancel', onCancel);
  }

  /** @param {PointerEvent} e */
  function onMove(e) {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) < DRAG_THRESHOLD_PX && Math.abs(dy) < DRAG_THRESHOLD_PX) return;
    drag.moved = true;
    const el = clipEls.get(drag.id);
    if (!el) return;
    const { clip } = drag;
    const source = ctx.sourceLength(stemIdOf(clip.source));
    const dt = dx / pps();
    /** @type {Record<string, any>} */
    let props;
    if (drag.mode === 'move') {
      props = { start: movedStart(clip.start, dt) };
      const lane = laneAtY(e.clientY);
      const track = lane?.dataset.trackId;
      if (lane && track && track !== clip.track) props.track = track;
      const home = lane && track ? lane : laneOf(clip.track);
      if (home && el.parentElement !== home) home.append(el);
      place(el, props.start, clipLength(clip, source));
    } else if (drag.mode === 'trim-left') {
      props = trimLeft(clip, dt, source);
      place(el, props.start, clipLength({ offset: props.offset, duration: props.duration ?? clip.duration }, source));
    } else {
      props = { duration: trimRight(clip, dt, source) };
      place(el, clip.start, props.duration);
    }
    drag.props = props;
    drag.gesture(props);
  }

  const onUp = () => finish(true);
  const onCancel = () => finish(false);

  /** @param {boolean} commit */
  function finish(commit) {
    window.removeEventListener('pointermove', onMove);
    window.removeEventListener('pointerup', onUp);
    window.removeEventListener('pointercancel', onCancel);
    const d = drag;
    drag = null;
    if (!d) return;
    d.gesture.cancel();
    clipEls.get(d.id)?.classList.remove('dragging');
    /** @type {Record<string, any>} */
    const changes = {};
    if (commit && d.moved) {
      for (const [key, value] of Object.entries(d.props)) {
        if (/** @type {Record<string, any>} */ (d.clip)[key] !== value) changes[key] = value;
      }
    }
    if (Object.keys(changes).length > 0) ctx.edit([{ op: 'set', kind: 'clip', id: d.id, props: changes }]);
    else if (d.gestured) ctx.send({ type: 'gesture', kind: 'clip', id: d.id, end: true });
    ctx.changed();
  }

  // --- render ----------------------------------------------------------------------------

  function renderRuler() {
    const doc = ctx.doc();
    const project = projectOf(doc);
    const length = Number(content.dataset.length);
    const scale = pps();
    const ticks = barTicks(project.tempo_bpm, project.time_signature, length, scale);
    replaceChildren(
      ruler,
      ticks.map((t) => h('span', { class: 'ruler-tick', style: `left: ${t.time * scale}px` }, String(t.bar))),
      Object.entries(doc.marker)
        .sort(([, a], [, b]) => a.time - b.time)
        .map(([id, m]) =>
          h('span', { class: 'marker-flag', dataset: { markerId: id, time: String(m.time) }, style: `left: ${m.time * scale}px`, title: `${m.name || 'Marker'} · ${formatTime(m.time)}` }, m.name || '◆'),
        ),
      Object.entries(doc.comment)
        .filter(([, c]) => !c.parent)
        .map(([id, c]) =>
          h('button', {
            type: 'button',
            class: `comment-pin${c.resolved ? ' resolved' : ''}`,
            dataset: { commentId: id },
            style: `left: ${c.time * scale}px`,
            title: `${c.author_name || 'Comment'}: ${c.text}`,
            'aria-label': `Comment at ${formatTime(c.time)} by ${c.author_name || 'someone'}`,
          }),
        ),
    );
    const barS = (60 / project.tempo_bpm) * project.time_signature[0] * (4 / project.time_signature[1]);
    content.style.setProperty('--bar-px', `${Math.max(4, barS * scale)}px`);
  }

  function renderPlayheads() {
    const scale = pps();
    playhead.style.left = `${ctx.playhead() * scale}px`;
    const self = ctx.presence.selfSession ? ctx.presence.sessions.get(ctx.presence.selfSession) : undefined;
    if (self) playhead.style.setProperty('--who', self.user.colour);
    reconcile(
      remoteHeads,
      ctx.presence.others().filter((p) => p.playhead != null),
      (p) => p.session,
      (p) => h('div', { class: 'remote-playhead', dataset: { session: p.session } }, h('span', { class: 'remote-playhead-name' })),
      (el, p) => {
        el.style.left = `${(p.playhead ?? 0) * scale}px`;
        el.style.setProperty('--who', p.user.colour);
        el.title = `${p.user.name} · ${formatTime(p.playhead ?? 0)}`;
        /** @type {HTMLElement} */ (el.firstElementChild).textContent = p.user.name;
      },
    );
  }

  function render() {
    const doc = ctx.doc();
    const scale = pps();
    const end = Math.max(
      songEnd(doc, ctx.sourceLength),
      ctx.playhead(),
      ...Object.values(doc.marker).map((m) => m.time),
      ...Object.values(doc.comment).map((c) => c.time),
    );
    const length = Math.max(MIN_LENGTH_S, end + TAIL_S);
    content.dataset.length = String(length);
    content.style.width = `${length * scale}px`;
    root.classList.toggle('readonly', !ctx.canEdit());

    reconcile(lanes, sortedByOrder(doc.track), ([id]) => id, createLane, updateLane);
    for (const [id, clip] of Object.entries(doc.clip)) {
      updateClip(clipEls.get(id) ?? createClip(id), id, clip);
    }
    for (const [id, el] of clipEls) {
      if (!(id in doc.clip)) {
        el.remove();
        clipEls.delete(id);
        if (drag?.id === id) finish(false);
      }
    }
    renderRuler();
    renderPlayheads();
  }

  /** @param {number} factor */
  function zoom(factor) {
    const before = pps();
    const next = Math.min(MAX_PX_PER_SECOND, Math.max(MIN_PX_PER_SECOND, Math.round(before * factor * 100) / 100));
    if (next === before) return;
    // Keep the playhead where it was on screen.
    const anchor = ctx.playhead();
    const screenX = anchor * before - root.scrollLeft;
    root.dataset.pxPerSecond = String(next);
    render();
    root.scrollLeft = Math.max(0, anchor * next - screenX);
  }

  return { render, renderPlayheads, zoom };
}
