// Track strips (name, gain, pan, mute, solo, order, delete, effects) and the
// master strip. Faders show others' drags live and send our own as gestures,
// committing one edit on release (docs/protocol.md §3).

import { h, replaceChildren } from '../dom.js';
import { GESTURE_INTERVAL_MS, throttle } from './gestures.js';
import { reconcile } from './keyed.js';
import { EFFECT_TYPES, paramLabel, paramsOf } from './effects.js';
import { PROJECT_ID, projectOf } from './state.js';
import { appendKey, reorderKey, sortedByOrder } from './clipmath.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 * @typedef {import('./state.js').DocState} DocState
 * @typedef {import('./state.js').Track} Track
 * @typedef {import('./state.js').Effect} Effect
 * @typedef {import('./state.js').Kind} Kind
 */

const GAIN = { min: -60, max: 12, step: 0.1 };
const PAN = { min: -1, max: 1, step: 0.01 };

/** @param {number} db */
function formatGain(db) {
  const text = db.toFixed(1);
  return `${text === '-0.0' ? '0.0' : text} dB`;
}

/** @param {number} pan */
function formatPan(pan) {
  if (Math.abs(pan) < 0.005) return 'C';
  return `${pan < 0 ? 'L' : 'R'}${Math.round(Math.abs(pan) * 100)}`;
}

/**
 * Wire a range input as a fader on one property: while it is dragged its
 * value is ours (renders leave it alone) and goes out as gestures; the
 * change on release is one edit, or a cancelled gesture if nothing changed.
 *
 * @param {EditorContext} ctx
 * @param {HTMLInputElement} input
 * @param {Kind} kind
 * @param {() => string} id
 * @param {string} prop
 * @param {() => number | undefined} current the committed value
 * @param {(value: number) => void} show update the readout
 */
function bindFader(ctx, input, kind, id, prop, current, show) {
  let gestured = false;
  const gesture = throttle((/** @type {number} */ value) => {
    if (ctx.send({ type: 'gesture', kind, id: id(), props: { [prop]: value } })) gestured = true;
  }, GESTURE_INTERVAL_MS);

  const release = () => {
    delete input.dataset.dragging;
    gesture.cancel();
  };
  input.addEventListener('pointerdown', () => {
    input.dataset.dragging = 'true';
  });
  input.addEventListener('input', () => {
    const value = input.valueAsNumber;
    if (!Number.isFinite(value)) return;
    show(value);
    gesture(value);
  });
  input.addEventListener('change', () => {
    release();
    const value = input.valueAsNumber;
    if (Number.isFinite(value) && value !== current()) {
      ctx.edit([{ op: 'set', kind, id: id(), props: { [prop]: value } }]);
    } else if (gestured) {
      ctx.send({ type: 'gesture', kind, id: id(), end: true });
    }
    gestured = false;
  });
  // A press and release without movement fires no change: let renders in again.
  input.addEventListener('pointerup', () =>
    setTimeout(() => {
      if (!input.dataset.dragging) return;
      release();
      if (gestured) ctx.send({ type: 'gesture', kind, id: id(), end: true });
      gestured = false;
    }, 0),
  );
}

/**
 * Set an input's value from the document unless the user is working it.
 * @param {HTMLInputElement | HTMLSelectElement} input
 * @param {string} value
 */
function setValue(input, value) {
  if (input.dataset.dragging) return;
  if (document.activeElement === input && input instanceof HTMLInputElement && input.type !== 'range') return;
  if (input.value !== value) input.value = value;
}

/**
 * @param {ParentNode} root
 * @param {boolean} disabled
 */
function disableControls(root, disabled) {
  for (const el of root.querySelectorAll('input, select, button, textarea')) /** @type {HTMLInputElement} */ (el).disabled = disabled;
}

/**
 * The effect chain of one bus (a track, or null for master).
 * @param {EditorContext} ctx
 * @param {() => string | null} bus
 */
function createEffects(ctx, bus) {
  const list = h('ul', { class: 'effect-list' });
  const type = h('select', { class: 'effect-type', 'aria-label': 'Effect type' }, Object.keys(EFFECT_TYPES).map((t) => h('option', { value: t }, t.replaceAll('_', ' '))));
  const add = h('button', { type: 'button', class: 'secondary effect-add' }, 'Add effect');
  const el = h('div', { class: 'effects' }, list, h('div', { class: 'effect-add-row' }, type, add));

  /** @param {Effect} e */
  const onBus = (e) => e.track === bus();

  add.addEventListener('click', () => {
    const params = Object.fromEntries((EFFECT_TYPES[type.value] ?? []).map((p) => [p.name, p.default]));
    const order = appendKey(ctx.doc().effect, onBus);
    ctx.edit([{ op: 'create', kind: 'effect', id: ctx.newId(), props: { track: bus(), order, type: type.value, params } }]);
  });

  /** @param {[string, Effect]} item */
  function createEffect([id]) {
    const li = h('li', { class: 'effect', dataset: { effectId: id } });
    li.addEventListener('click', (e) => {
      const button = /** @type {Element} */ (e.target).closest('button');
      if (!button) return;
      if (button.classList.contains('effect-remove')) ctx.edit([{ op: 'delete', kind: 'effect', id }]);
      const step = button.classList.contains('effect-up') ? -1 : button.classList.contains('effect-down') ? 1 : 0;
      if (step) {
        const order = reorderKey(sortedByOrder(ctx.doc().effect, onBus), id, step);
        if (order) ctx.edit([{ op: 'set', kind: 'effect', id, props: { order } }]);
      }
    });
    li.addEventListener('change', (e) => {
      const input = e.target;
      if (!(input instanceof HTMLInputElement || input instanceof HTMLSelectElement) || !input.name) return;
      const effect = ctx.doc().effect[id];
      if (!effect) return;
      /** @type {number | string} */
      let value = input.value;
      if (input instanceof HTMLInputElement) {
        value = input.valueAsNumber;
        if (!Number.isFinite(value)) {
          input.value = String(effect.params[input.name] ?? '');
          return;
        }
      }
      if (effect.params[input.name] !== value) ctx.edit([{ op: 'set', kind: 'effect', id, props: { params: { [input.name]: value } } }]);
    });
    return li;
  }

  /** @param {HTMLElement} li @param {[string, Effect]} item */
  function updateEffect(li, [, effect]) {
    const params = paramsOf(effect.type, effect.params);
    const signature = `${effect.type}|${params.map((p) => p.name).join(',')}`;
    if (li.dataset.signature !== signature) {
      li.dataset.signature = signature;
      replaceChildren(
        li,
        h(
          'div',
          { class: 'effect-head' },
          h('span', { class: 'effect-name' }, effect.type.replaceAll('_', ' ')),
          h('button', { type: 'button', class: 'secondary icon effect-up', 'aria-label': `Move ${effect.type} up` }, '↑'),
          h('button', { type: 'button', class: 'secondary icon effect-down', 'aria-label': `Move ${effect.type} down` }, '↓'),
          h('button', { type: 'button', class: 'danger icon effect-remove', 'aria-label': `Remove ${effect.type}` }, '✕'),
        ),
        h(
          'div',
          { class: 'effect-params' },
          params.map((p) =>
            h(
              'label',
              null,
              paramLabel(p.name),
              'choices' in p
                ? h('select', { class: 'effect-param', name: p.name }, p.choices.map((c) => h('option', { value: c }, c)))
                : h('input', {
                    class: 'effect-param',
                    name: p.name,
                    type: 'number',
                    step: 'any',
                    min: Number.isFinite(p.min) ? p.min : null,
                    max: Number.isFinite(p.max) ? p.max : null,
                  }),
            ),
          ),
        ),
      );
    }
    for (const input of li.querySelectorAll('.effect-param')) {
      const field = /** @type {HTMLInputElement | HTMLSelectElement} */ (input);
      setValue(field, String(effect.params[field.name] ?? ''));
    }
    li.dataset.type = effect.type;
  }

  /** @param {DocState} doc */
  function update(doc) {
    reconcile(list, sortedByOrder(doc.effect, onBus), ([id]) => id, createEffect, updateEffect);
    disableControls(el, !ctx.canEdit());
    return list.children.length;
  }

  return { el, update };
}

/**
 * @param {EditorContext} ctx
 * @param {HTMLElement} strips #track-strips
 * @param {HTMLElement} master #master-strip
 */
export function createMixer(ctx, strips, master) {
  /** @param {[string, Track]} item */
  function createStrip([id]) {
    const name = h('input', { class: 'track-name', maxlength: 200, 'aria-label': 'Track name', autocomplete: 'off', spellcheck: 'false' });
    const mute = h('button', { type: 'button', class: 'secondary toggle track-mute', 'aria-pressed': 'false', title: 'Mute' }, 'M');
    const solo = h('button', { type: 'button', class: 'secondary toggle track-solo', 'aria-pressed': 'false', title: 'Solo' }, 'S');
    const up = h('button', { type: 'button', class: 'secondary icon track-up', 'aria-label': 'Move track up' }, '↑');
    const down = h('button', { type: 'button', class: 'secondary icon track-down', 'aria-label': 'Move track down' }, '↓');
    const del = h('button', { type: 'button', class: 'danger icon track-delete', 'aria-label': 'Delete track' }, '✕');
    const gain = h('input', { class: 'track-gain', type: 'range', min: GAIN.min, max: GAIN.max, step: GAIN.step, 'aria-label': 'Gain (dB)' });
    const gainValue = h('output', { class: 'track-gain-value' });
    const pan = h('input', { class: 'track-pan', type: 'range', min: PAN.min, max: PAN.max, step: PAN.step, 'aria-label': 'Pan' });
    const panValue = h('output', { class: 'track-pan-value' });
    const effects = createEffects(ctx, () => id);
    const fxSummary = h('summary', { class: 'effects-summary' }, 'FX');
    const strip = h(
      'section',
      { class: 'track', dataset: { trackId: id } },
      h('div', { class: 'track-head' }, name, mute, solo),
      h('div', { class: 'fader-row' }, h('span', { class: 'fader-label' }, 'Gain'), gain, gainValue),
      h('div', { class: 'fader-row' }, h('span', { class: 'fader-label' }, 'Pan'), pan, panValue),
      h(
        'div',
        { class: 'track-foot' },
        h('details', { class: 'track-effects' }, fxSummary, effects.el),
        up,
        down,
        del,
      ),
    );

    const track = () => ctx.doc().track[id];
    name.addEventListener('change', () => {
      const t = track();
      const value = name.value.trim();
      if (!t) return;
      if (!value) {
        name.value = t.name;
        ctx.showError('A track needs a name.');
        return;
      }
      if (value !== t.name) ctx.edit([{ op: 'set', kind: 'track', id, props: { name: value.slice(0, 200) } }]);
    });
    name.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') name.blur();
      if (e.key === 'Escape') {
        name.value = track()?.name ?? name.value;
        name.blur();
      }
    });
    mute.addEventListener('click', () => {
      const t = track();
      if (t) ctx.edit([{ op: 'set', kind: 'track', id, props: { mute: !t.mute } }]);
    });
    solo.addEventListener('click', () => {
      const t = track();
      if (t) ctx.edit([{ op: 'set', kind: 'track', id, props: { solo: !t.solo } }]);
    });
    del.addEventListener('click', () => ctx.edit([{ op: 'delete', kind: 'track', id }]));
    for (const [button, step] of /** @type {const} */ ([[up, -1], [down, 1]])) {
      button.addEventListener('click', () => {
        const order = reorderKey(sortedByOrder(ctx.doc().track), id, step);
        if (order) ctx.edit([{ op: 'set', kind: 'track', id, props: { order } }]);
      });
    }
    bindFader(ctx, gain, 'track', () => id, 'gain_db', () => track()?.gain_db, (v) => (gainValue.value = formatGain(v)));
    bindFader(ctx, pan, 'track', () => id, 'pan', () => track()?.pan, (v) => (panValue.value = formatPan(v)));
    stripParts.set(strip, { name, mute, solo, gain, gainValue, pan, panValue, effects, fxSummary, up, down });
    return strip;
  }

  /**
   * @type {WeakMap<HTMLElement, {
   *   name: HTMLInputElement, mute: HTMLButtonElement, solo: HTMLButtonElement,
   *   gain: HTMLInputElement, gainValue: HTMLOutputElement, pan: HTMLInputElement, panValue: HTMLOutputElement,
   *   effects: ReturnType<typeof createEffects>, fxSummary: HTMLElement, up: HTMLButtonElement, down: HTMLButtonElement }>}
   */
  const stripParts = new WeakMap();

  /**
   * @param {HTMLElement} strip
   * @param {[string, Track]} item
   * @param {number} index
   * @param {number} count
   */
  function updateStrip(strip, [id, track], index, count) {
    const p = stripParts.get(strip);
    if (!p) return;
    const doc = ctx.doc();
    setValue(p.name, track.name);
    setValue(p.gain, String(track.gain_db));
    if (!p.gain.dataset.dragging) p.gainValue.value = formatGain(track.gain_db);
    setValue(p.pan, String(track.pan));
    if (!p.pan.dataset.dragging) p.panValue.value = formatPan(track.pan);
    p.mute.setAttribute('aria-pressed', String(track.mute));
    p.solo.setAttribute('aria-pressed', String(track.solo));
    strip.classList.toggle('muted-track', track.mute);
    strip.classList.toggle('soloed-track', track.solo);
    strip.setAttribute('aria-label', `Track ${track.name}`);
    const dragger = ctx.gestures.sessionOf('track', id);
    const colour = dragger ? ctx.presence.sessions.get(dragger)?.user.colour : undefined;
    strip.style.setProperty('--who', colour ?? 'transparent');
    strip.classList.toggle('remote-drag', Boolean(colour));
    const n = p.effects.update(doc);
    p.fxSummary.textContent = n ? `FX (${n})` : 'FX';
    disableControls(strip, !ctx.canEdit());
    if (ctx.canEdit()) {
      // The ends of the list cannot move further.
      p.up.disabled = index === 0;
      p.down.disabled = index === count - 1;
    }
  }

  // --- master ----------------------------------------------------------------

  const masterGain = h('input', { class: 'master-gain', type: 'range', min: GAIN.min, max: GAIN.max, step: GAIN.step, 'aria-label': 'Master gain (dB)' });
  const masterValue = h('output', { class: 'master-gain-value' });
  const masterEffects = createEffects(ctx, () => null);
  const masterSummary = h('summary', { class: 'effects-summary' }, 'FX');
  replaceChildren(
    master,
    h('div', { class: 'track-head' }, h('strong', null, 'Master')),
    h('div', { class: 'fader-row' }, h('span', { class: 'fader-label' }, 'Gain'), masterGain, masterValue),
    h('div', { class: 'track-foot' }, h('details', { class: 'track-effects' }, masterSummary, masterEffects.el)),
  );
  bindFader(
    ctx,
    masterGain,
    'project',
    () => PROJECT_ID,
    'master_gain_db',
    () => projectOf(ctx.doc()).master_gain_db,
    (v) => (masterValue.value = formatGain(v)),
  );

  function render() {
    const doc = ctx.doc();
    const tracks = sortedByOrder(doc.track);
    reconcile(strips, tracks, ([id]) => id, createStrip, (el, item) => updateStrip(el, item, tracks.indexOf(item), tracks.length));
    const project = projectOf(doc);
    setValue(masterGain, String(project.master_gain_db));
    if (!masterGain.dataset.dragging) masterValue.value = formatGain(project.master_gain_db);
    masterGain.disabled = !ctx.canEdit();
    const n = masterEffects.update(doc);
    masterSummary.textContent = n ? `FX (${n})` : 'FX';
  }

  return { render };
}
