// Comments pinned to a time (and optionally a track), with one level of
// replies and a resolved flag. They are objects of the live document, so
// they arrive, change and go like any edit; viewers may write them too.

import { h, replaceChildren, showError, timeElement } from '../dom.js';
import { reconcile } from './keyed.js';
import { formatTime, snap, sortedByOrder } from './clipmath.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 * @typedef {import('./state.js').DocState} DocState
 * @typedef {import('./state.js').Comment} Comment
 * @typedef {{ id: string, comment: Comment, replies: [string, Comment][] }} Thread
 */

const MAX_TEXT = 5000;

/**
 * Top-level comments by time, each with its replies oldest first. Replies
 * the server has not dated yet (ours, in flight) come last.
 * @param {Record<string, Comment>} comments
 * @returns {Thread[]}
 */
export function threads(comments) {
  /** @param {[string, Comment]} a @param {[string, Comment]} b */
  const byCreated = ([ia, a], [ib, b]) => {
    const ca = a.created_at || '\uffff';
    const cb = b.created_at || '\uffff';
    return ca < cb ? -1 : ca > cb ? 1 : ia < ib ? -1 : ia > ib ? 1 : 0;
  };
  const all = Object.entries(comments);
  return all
    .filter(([, c]) => !c.parent)
    .sort((a, b) => a[1].time - b[1].time || byCreated(a, b))
    .map(([id, comment]) => ({ id, comment, replies: all.filter(([, c]) => c.parent === id).sort(byCreated) }));
}

/**
 * @param {EditorContext} ctx
 * @param {HTMLFormElement} form #comment-form
 * @param {HTMLElement} list #comment-list
 */
export function createComments(ctx, form, list) {
  const text = h('textarea', { name: 'text', rows: 3, maxlength: MAX_TEXT, required: true, placeholder: 'Leave a comment at the playhead…', 'aria-label': 'Comment' });
  const time = h('input', { name: 'time', type: 'number', min: 0, step: 'any', class: 'short', 'aria-label': 'Time (s)' });
  const track = h('select', { name: 'track', 'aria-label': 'Track' });
  const submit = h('button', { type: 'submit' }, 'Comment');
  replaceChildren(
    form,
    text,
    h('div', { class: 'row' }, h('label', null, 'At (s)', time), h('label', { class: 'grow' }, 'Track', track), submit),
  );
  /** The time field follows the playhead until the user types in it. */
  let timeTouched = false;
  time.addEventListener('input', () => {
    timeTouched = true;
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = text.value.trim();
    const at = time.value.trim() === '' ? ctx.playhead() : time.valueAsNumber;
    if (!body) {
      showError(form, 'Write something first.');
      return;
    }
    if (!Number.isFinite(at) || at < 0) {
      showError(form, 'The time is a number of seconds, 0 or more.');
      return;
    }
    showError(form, null);
    const trackId = track.value && track.value in ctx.live().track ? track.value : null;
    ctx.edit([{ op: 'create', kind: 'comment', id: ctx.newId(), props: { time: at, track: trackId, parent: null, text: body } }]);
    text.value = '';
    timeTouched = false;
    render();
  });

  // One listener for every comment's buttons and reply form.
  list.addEventListener('click', (e) => {
    const button = /** @type {Element} */ (e.target).closest('button');
    const item = button?.closest('.comment');
    if (!button || !(item instanceof HTMLElement) || !item.dataset.commentId) return;
    const id = item.dataset.commentId;
    const comment = ctx.live().comment[id];
    if (!comment) return;
    if (button.classList.contains('comment-time')) ctx.setPlayhead(comment.time);
    else if (button.classList.contains('comment-resolve')) ctx.edit([{ op: 'set', kind: 'comment', id, props: { resolved: !comment.resolved } }]);
    else if (button.classList.contains('comment-delete')) ctx.edit([{ op: 'delete', kind: 'comment', id }]);
    else if (button.classList.contains('comment-reply')) {
      const reply = item.querySelector('form.reply-form');
      if (reply instanceof HTMLFormElement) {
        reply.hidden = !reply.hidden;
        if (!reply.hidden) reply.querySelector('textarea')?.focus();
      }
    } else if (button.classList.contains('reply-cancel')) {
      const reply = button.closest('form');
      if (reply) reply.hidden = true;
    }
  });
  list.addEventListener('submit', (e) => {
    e.preventDefault();
    const reply = e.target;
    const item = reply instanceof HTMLFormElement ? reply.closest('.comment') : null;
    if (!(reply instanceof HTMLFormElement) || !(item instanceof HTMLElement) || !item.dataset.commentId) return;
    const parent = ctx.live().comment[item.dataset.commentId];
    const area = reply.querySelector('textarea');
    const body = area?.value.trim() ?? '';
    if (!parent || !area || !body) return;
    ctx.edit([
      { op: 'create', kind: 'comment', id: ctx.newId(), props: { time: parent.time, track: parent.track, parent: item.dataset.commentId, text: body } },
    ]);
    area.value = '';
    reply.hidden = true;
  });

  /**
   * @param {Comment} c
   * @param {boolean} reply
   */
  function meta(c, reply) {
    const trackName = c.track ? ctx.live().track[c.track]?.name ?? 'a deleted track' : null;
    const mine = c.author === ctx.me.id;
    return [
      h(
        'div',
        { class: 'comment-meta' },
        h('strong', { class: 'comment-author' }, c.author_name || 'someone'),
        !reply && h('button', { type: 'button', class: 'link comment-time', title: 'Move the playhead here' }, formatTime(c.time)),
        !reply && trackName && h('span', { class: 'comment-track muted' }, trackName),
        c.created_at ? timeElement(c.created_at) : h('span', { class: 'muted comment-sending' }, 'sending…'),
      ),
      h('p', { class: 'comment-text' }, c.text),
      h(
        'div',
        { class: 'comment-actions' },
        !reply && h('button', { type: 'button', class: 'link comment-reply' }, 'Reply'),
        !reply &&
          h('button', { type: 'button', class: 'link comment-resolve', 'aria-pressed': String(c.resolved) }, c.resolved ? 'Reopen' : 'Resolve'),
        mine && h('button', { type: 'button', class: 'link comment-delete', 'aria-label': 'Delete comment' }, 'Delete'),
      ),
    ];
  }

  /** @param {Thread} t */
  function createThread(t) {
    const replies = h('ul', { class: 'comment-replies' });
    const form = h(
      'form',
      { class: 'reply-form', hidden: true, 'aria-label': 'Reply' },
      h('textarea', { name: 'text', rows: 2, maxlength: MAX_TEXT, required: true, 'aria-label': 'Reply', placeholder: 'Reply…' }),
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Reply'), h('button', { type: 'button', class: 'secondary reply-cancel' }, 'Cancel')),
    );
    return h('li', { class: 'comment', dataset: { commentId: t.id } }, h('div', { class: 'comment-body' }), replies, form);
  }

  /** @param {HTMLElement} li @param {Thread} t */
  function updateThread(li, t) {
    const c = t.comment;
    li.classList.toggle('resolved', c.resolved);
    li.dataset.resolved = String(c.resolved);
    li.style.setProperty('--pin', c.resolved ? 'var(--muted)' : 'var(--warn)');
    const body = /** @type {HTMLElement} */ (li.querySelector('.comment-body'));
    const sig = JSON.stringify([c, ctx.live().track[c.track ?? '']?.name]);
    if (body.dataset.sig !== sig) {
      body.dataset.sig = sig;
      replaceChildren(body, meta(c, false));
    }
    reconcile(
      /** @type {HTMLElement} */ (li.querySelector('.comment-replies')),
      t.replies,
      ([id]) => id,
      ([id]) => h('li', { class: 'comment reply', dataset: { commentId: id } }),
      (el, [, r]) => {
        const rsig = JSON.stringify(r);
        if (el.dataset.sig === rsig) return;
        el.dataset.sig = rsig;
        replaceChildren(el, meta(r, true));
      },
    );
  }

  function render() {
    const doc = ctx.live();
    const all = threads(doc.comment);
    reconcile(list, all, (t) => t.id, createThread, updateThread);
    list.dataset.count = String(all.length);

    const tracks = sortedByOrder(doc.track);
    const options = [['', 'No track'], ...tracks.map(([id, t]) => [id, t.name])];
    const sig = JSON.stringify(options);
    if (track.dataset.sig !== sig) {
      const chosen = track.value;
      track.dataset.sig = sig;
      replaceChildren(track, options.map(([value, label]) => h('option', { value }, label)));
      track.value = options.some(([v]) => v === chosen) ? chosen : '';
    }
    if (!timeTouched && document.activeElement !== time) time.value = String(snap(ctx.playhead()));
    const enabled = ctx.canComment();
    for (const el of form.querySelectorAll('textarea, input, select, button')) /** @type {HTMLInputElement} */ (el).disabled = !enabled;
  }

  /** @param {string} id */
  function focus(id) {
    const c = ctx.live().comment[id];
    const target = list.querySelector(`.comment[data-comment-id="${CSS.escape(c?.parent ?? id)}"]`);
    if (!(target instanceof HTMLElement)) return;
    target.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    target.classList.remove('flash');
    void target.offsetWidth; // restart the animation
    target.classList.add('flash');
    if (c) ctx.setPlayhead(c.time);
  }

  return { render, focus };
}
