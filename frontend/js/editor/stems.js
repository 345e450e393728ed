// The stems sidebar: the project's stems, each ready one addable as a new
// track holding one clip of it (one edit, so one undo).

import { h, replaceChildren } from '../dom.js';
import { formatChannels, formatDuration, formatPercent } from '../waveform.js';
import { appendKey } from './clipmath.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 * @typedef {import('../api.js').Stem} Stem
 * @typedef {import('./state.js').Op} Op
 */

/**
 * The ops that add `stem` as a new last track with one clip at `start`.
 * @param {Record<string, { order: string }>} tracks
 * @param {Pick<Stem, 'id' | 'name'>} stem
 * @param {string} trackId
 * @param {string} clipId
 * @param {number} [start]
 * @returns {Op[]}
 */
export function addStemOps(tracks, stem, trackId, clipId, start = 0) {
  return [
    { op: 'create', kind: 'track', id: trackId, props: { name: (stem.name || `Stem ${stem.id}`).slice(0, 200), order: appendKey(tracks) } },
    { op: 'create', kind: 'clip', id: clipId, props: { track: trackId, source: `stem:${stem.id}`, start } },
  ];
}

/**
 * @param {EditorContext} ctx
 * @param {HTMLElement} list #editor-stems
 */
export function createStems(ctx, list) {
  list.addEventListener('click', (e) => {
    const button = /** @type {Element} */ (e.target).closest('button.add-stem-track');
    const item = button?.closest('li.editor-stem');
    if (!(item instanceof HTMLElement)) return;
    const stem = ctx.stems.get(Number(item.dataset.stemId));
    if (!stem || stem.status !== 'ready' || !ctx.canEdit()) return;
    ctx.edit(addStemOps(ctx.doc().track, stem, ctx.newId(), ctx.newId()));
  });

  function render() {
    const stems = [...ctx.stems.values()];
    // Rebuilt only when something shown changed, so a button is not swapped
    // out from under a click by an unrelated edit.
    const sig = JSON.stringify([ctx.canEdit(), stems.map((s) => [s.id, s.name, s.status, s.progress, s.duration_s])]);
    if (list.dataset.sig === sig) return;
    list.dataset.sig = sig;
    if (stems.length === 0) {
      replaceChildren(list, h('li', { class: 'muted empty' }, 'No stems yet: upload them on the project page.'));
      return;
    }
    replaceChildren(
      list,
      stems.map((s) =>
        h(
          'li',
          { class: 'editor-stem', dataset: { stemId: String(s.id), status: s.status } },
          h('span', { class: 'editor-stem-name' }, s.name),
          h(
            'span',
            { class: 'muted editor-stem-meta' },
            s.status === 'ready'
              ? `${formatDuration(s.duration_s)} · ${formatChannels(s.channels)}`
              : s.status === 'analysing'
                ? `analysing ${formatPercent(s.progress)}`
                : 'failed',
          ),
          h(
            'button',
            { type: 'button', class: 'secondary add-stem-track', disabled: s.status !== 'ready' || !ctx.canEdit(), 'aria-label': `Add ${s.name} as a track` },
            'Add as track',
          ),
        ),
      ),
    );
  }

  return { render };
}
