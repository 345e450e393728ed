// The selected clip's numbers (start, offset, duration, gain, fades) and the
// clip actions: split at the playhead and delete.

import { h } from '../dom.js';
import { clipLength, splitOps, stemIdOf } from './clipmath.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 * @typedef {import('./state.js').Op} Op
 */

/** @type {{ name: string, label: string, min: number, max: number, nullable?: boolean }[]} */
const FIELDS = [
  { name: 'start', label: 'Start (s)', min: 0, max: 86400 },
  { name: 'offset', label: 'Offset (s)', min: 0, max: 86400 },
  { name: 'duration', label: 'Duration (s)', min: 0, max: 86400, nullable: true },
  { name: 'gain_db', label: 'Gain (dB)', min: -120, max: 24 },
  { name: 'fade_in', label: 'Fade in (s)', min: 0, max: 3600 },
  { name: 'fade_out', label: 'Fade out (s)', min: 0, max: 3600 },
];

/**
 * Ops that split every clip in `ids` crossing time `at`.
 * @param {EditorContext} ctx
 * @param {Iterable<string>} ids
 * @param {number} at
 * @returns {Op[]}
 */
export function splitAt(ctx, ids, at) {
  const doc = ctx.doc();
  /** @type {Op[]} */
  const ops = [];
  for (const id of ids) {
    const clip = doc.clip[id];
    if (!clip) continue;
    ops.push(...(splitOps(id, clip, at, ctx.newId(), ctx.sourceLength(stemIdOf(clip.source))) ?? []));
  }
  return ops;
}

/**
 * The clips a split should cut: the selection, or with nothing selected,
 * every clip under the playhead.
 * @param {EditorContext} ctx
 */
export function splitTargets(ctx) {
  const selected = [...ctx.selection()];
  if (selected.length) return selected;
  const doc = ctx.doc();
  const at = ctx.playhead();
  return Object.entries(doc.clip)
    .filter(([, c]) => c.start < at && at < c.start + clipLength(c, ctx.sourceLength(stemIdOf(c.source))))
    .map(([id]) => id);
}

/**
 * @param {EditorContext} ctx
 * @param {HTMLElement} root #clip-inspector
 */
export function createInspector(ctx, root) {
  const title = h('p', { class: 'inspector-title muted' });
  const inputs = FIELDS.map((f) =>
    h('input', { name: f.name, type: 'number', step: 'any', min: f.min, max: f.max, placeholder: f.nullable ? 'to the end' : null, class: 'clip-field' }),
  );
  const fields = h(
    'div',
    { class: 'inspector-fields' },
    FIELDS.map((f, i) => h('label', null, f.label, inputs[i])),
  );
  const split = h('button', { type: 'button', class: 'secondary clip-split' }, 'Split at playhead');
  const del = h('button', { type: 'button', class: 'danger clip-delete' }, 'Delete');
  const form = h('form', { class: 'inspector-form', 'aria-label': 'Selected clip' }, fields, h('div', { class: 'row' }, split, del));
  root.append(title, form);

  const selected = () => [...ctx.selection()].filter((id) => id in ctx.doc().clip);

  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('change', (e) => {
    const input = e.target;
    const ids = selected();
    if (!(input instanceof HTMLInputElement) || ids.length !== 1) return;
    const field = FIELDS.find((f) => f.name === input.name);
    const clip = ctx.doc().clip[ids[0]];
    if (!field || !clip) return;
    /** @type {number | null} */
    let value = input.value.trim() === '' && field.nullable ? null : input.valueAsNumber;
    if (value !== null && !Number.isFinite(value)) {
      ctx.showError(`${field.label}: enter a number.`);
      render();
      return;
    }
    if (/** @type {Record<string, any>} */ (clip)[field.name] !== value) {
      ctx.edit([{ op: 'set', kind: 'clip', id: ids[0], props: { [field.name]: value } }]);
    }
  });
  split.addEventListener('click', () => {
    const ops = splitAt(ctx, selected(), ctx.playhead());
    if (ops.length) ctx.edit(ops);
    else ctx.showError('Move the playhead inside the selected clip to split it.');
  });
  del.addEventListener('click', () => {
    const ids = selected();
    if (ids.length) ctx.edit(ids.map((id) => ({ op: 'delete', kind: 'clip', id })));
  });

  function render() {
    const ids = selected();
    const doc = ctx.doc();
    root.hidden = ids.length === 0;
    const one = ids.length === 1 ? doc.clip[ids[0]] : undefined;
    if (one) {
      const stemId = stemIdOf(one.source);
      title.textContent = ctx.stems.get(stemId ?? -1)?.name ?? one.source;
    } else {
      title.textContent = `${ids.length} clips selected`;
    }
    fields.hidden = !one;
    FIELDS.forEach((f, i) => {
      const input = inputs[i];
      if (document.activeElement === input) return;
      const value = one ? /** @type {Record<string, any>} */ (one)[f.name] : null;
      input.value = value == null ? '' : String(value);
    });
    for (const el of form.querySelectorAll('input, button')) /** @type {HTMLInputElement} */ (el).disabled = !ctx.canEdit();
  }

  return { render };
}
