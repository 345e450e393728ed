// Markers: named points on the timeline, listed here and flagged on the
// ruler by timeline.js.

import { h } from '../dom.js';
import { reconcile } from './keyed.js';
import { snap } from './clipmath.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 * @typedef {import('./state.js').Marker} Marker
 */

/**
 * @param {EditorContext} ctx
 * @param {HTMLElement} list #marker-list
 */
export function createMarkers(ctx, list) {
  /** @param {[string, Marker]} item */
  function create([id]) {
    const name = h('input', { class: 'marker-name', maxlength: 200, 'aria-label': 'Marker name', autocomplete: 'off' });
    const time = h('input', { class: 'marker-time', type: 'number', min: 0, step: 'any', 'aria-label': 'Marker time (s)' });
    const go = h('button', { type: 'button', class: 'secondary icon marker-go', 'aria-label': 'Move the playhead here' }, '▸');
    const del = h('button', { type: 'button', class: 'danger icon marker-delete', 'aria-label': 'Delete marker' }, '✕');
    const li = h('li', { class: 'marker-item', dataset: { markerId: id } }, go, name, time, del);
    const marker = () => ctx.doc().marker[id];
    name.addEventListener('change', () => {
      const m = marker();
      if (m && name.value !== m.name) ctx.edit([{ op: 'set', kind: 'marker', id, props: { name: name.value.slice(0, 200) } }]);
    });
    time.addEventListener('change', () => {
      const m = marker();
      const t = time.valueAsNumber;
      if (!m) return;
      if (!Number.isFinite(t) || t < 0) {
        time.value = String(m.time);
        ctx.showError('A marker time is a number of seconds, 0 or more.');
        return;
      }
      if (t !== m.time) ctx.edit([{ op: 'set', kind: 'marker', id, props: { time: t } }]);
    });
    go.addEventListener('click', () => {
      const m = marker();
      if (m) ctx.setPlayhead(m.time);
    });
    del.addEventListener('click', () => ctx.edit([{ op: 'delete', kind: 'marker', id }]));
    return li;
  }

  /** @param {HTMLElement} li @param {[string, Marker]} item */
  function update(li, [, m]) {
    const [, name, time] = /** @type {HTMLInputElement[]} */ ([...li.children]);
    if (document.activeElement !== name) name.value = m.name;
    if (document.activeElement !== time) time.value = String(m.time);
    for (const el of li.querySelectorAll('input, button:not(.marker-go)')) /** @type {HTMLInputElement} */ (el).disabled = !ctx.canEdit();
  }

  function render() {
    const markers = Object.entries(ctx.doc().marker).sort(([ia, a], [ib, b]) => a.time - b.time || (ia < ib ? -1 : 1));
    reconcile(list, markers, ([id]) => id, create, update);
  }

  /** A marker at the playhead, numbered after the ones there are. */
  function addAtPlayhead() {
    const n = Object.keys(ctx.doc().marker).length + 1;
    ctx.edit([{ op: 'create', kind: 'marker', id: ctx.newId(), props: { time: snap(ctx.playhead()), name: `Marker ${n}` } }]);
  }

  return { render, addAtPlayhead };
}
