// Version history (docs/protocol.md §5) over the REST API: list with who
// changed what, save a named version, preview one read-only, restore one.
// A restore arrives back as an ordinary edit over the socket.

import { api } from '../api.js';
import { h, messageOf, replaceChildren, showError, timeElement } from '../dom.js';

/**
 * @typedef {import('./context.js').EditorContext} EditorContext
 *
 * @typedef {object} VersionInfo
 * @property {number} id
 * @property {string} name
 * @property {string} [kind] named or auto
 * @property {number} [revision]
 * @property {string} [created_at]
 * @property {unknown} [created_by]
 * @property {unknown} [changes]
 * @property {unknown} [state] only when fetched one by one
 */

/**
 * A person as the API may spell one: a name, or an object with one.
 * @param {unknown} who
 */
export function personName(who) {
  if (typeof who === 'string') return who;
  if (who && typeof who === 'object') {
    const o = /** @type {Record<string, unknown>} */ (who);
    for (const key of ['username', 'name', 'user_name', 'author_name']) if (typeof o[key] === 'string') return /** @type {string} */ (o[key]);
    if (o.user !== undefined) return personName(o.user);
  }
  return '';
}

/**
 * "who changed what since the version before", whatever its exact shape: a
 * list of lines, of {user, kinds|what|edits}, or a map from person to what.
 * The protocol names the content but not the fields, hence the leniency.
 * @param {unknown} changes
 * @returns {string[]}
 */
export function describeChanges(changes) {
  if (typeof changes === 'string') return changes ? [changes] : [];
  /** @param {unknown} what */
  const describe = (what) => {
    if (Array.isArray(what)) return what.map(String).join(', ');
    if (typeof what === 'number') return `${what} edit${what === 1 ? '' : 's'}`;
    if (typeof what === 'string') return what;
    return '';
  };
  if (Array.isArray(changes)) {
    return changes
      .map((item) => {
        if (typeof item === 'string') return item;
        if (!item || typeof item !== 'object') return '';
        const o = /** @type {Record<string, unknown>} */ (item);
        const who = personName(o.user ?? o.user_name ?? o.username ?? o.name ?? o.author);
        const what = describe(o.kinds ?? o.what ?? o.changed ?? o.edits ?? o.count);
        return [who, what].filter(Boolean).join(': ');
      })
      .filter(Boolean);
  }
  if (changes && typeof changes === 'object') {
    return Object.entries(changes).map(([who, what]) => [who, describe(what)].filter(Boolean).join(': '));
  }
  return [];
}

/**
 * @param {unknown} body the list answer: an array, or {versions: [...]}
 * @returns {VersionInfo[]}
 */
export function readVersionList(body) {
  const items = Array.isArray(body) ? body : body && typeof body === 'object' ? /** @type {any} */ (body).versions : null;
  return Array.isArray(items) ? items.filter((v) => v && typeof v === 'object' && v.id != null) : [];
}

/** @param {VersionInfo} v */
function versionTitle(v) {
  return v.name || (v.kind === 'auto' ? 'Checkpoint' : `Version ${v.id}`);
}

/**
 * @param {EditorContext} ctx
 * @param {{ form: HTMLFormElement, list: HTMLElement, banner: HTMLElement }} mounts
 * @param {(version: { info: VersionInfo, state: unknown } | null) => void} onPreview
 */
export function createVersions(ctx, { form, list, banner }, onPreview) {
  const name = h('input', { name: 'name', maxlength: 200, required: true, autocomplete: 'off', placeholder: 'e.g. Before the new chorus', 'aria-label': 'Version name' });
  const save = h('button', { type: 'submit' }, 'Save version');
  replaceChildren(form, h('div', { class: 'row' }, h('label', { class: 'grow' }, 'Name', name), save));

  /** @type {VersionInfo[]} */
  let versions = [];
  /** @type {VersionInfo | null} */
  let previewing = null;
  let loading = 0;

  async function load() {
    const ticket = ++loading;
    try {
      const body = await api.get(`${ctx.apiBase}/versions`);
      if (ticket !== loading) return; // a newer load answered first
      versions = readVersionList(body);
      showError(list, null);
      render();
    } catch (err) {
      if (ticket === loading) showError(list, `Could not load the versions: ${messageOf(err)}`);
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = name.value.trim();
    if (!value) {
      showError(form, 'Give the version a name.');
      return;
    }
    showError(form, null);
    save.disabled = true;
    try {
      await api.post(`${ctx.apiBase}/versions`, { name: value });
      name.value = '';
      await load();
    } catch (err) {
      showError(form, messageOf(err));
    } finally {
      save.disabled = !ctx.canEdit();
    }
  });

  /** @param {number} id */
  async function preview(id) {
    showError(list, null);
    try {
      const version = /** @type {VersionInfo} */ (await api.get(`${ctx.apiBase}/versions/${id}`));
      const info = versions.find((v) => v.id === id) ?? version;
      previewing = { ...info, ...version };
      onPreview({ info: previewing, state: version.state });
      render();
    } catch (err) {
      showError(list, `Could not open the version: ${messageOf(err)}`);
    }
  }

  /** @param {number} id */
  async function restore(id) {
    showError(list, null);
    try {
      await api.post(`${ctx.apiBase}/versions/${id}/restore`, {});
      exitPreview();
    } catch (err) {
      showError(previewing ? banner : list, `Could not restore: ${messageOf(err)}`);
    }
  }

  function exitPreview() {
    previewing = null;
    onPreview(null);
    render();
  }

  list.addEventListener('click', (e) => {
    const button = /** @type {Element} */ (e.target).closest('button');
    const item = button?.closest('.version');
    if (!button || !(item instanceof HTMLElement)) return;
    const id = Number(item.dataset.versionId);
    if (button.classList.contains('version-preview')) void preview(id);
    else if (button.classList.contains('version-restore')) void restore(id);
  });
  banner.addEventListener('click', (e) => {
    const button = /** @type {Element} */ (e.target).closest('button');
    if (!button || !previewing) return;
    if (button.id === 'preview-exit') exitPreview();
    else if (button.classList.contains('version-restore')) void restore(previewing.id);
  });

  function render() {
    const editable = ctx.canEdit() || Boolean(previewing && ctx.role() !== 'viewer');
    // Called on every render of the page: rebuild only when something shown
    // changed, so a button is not swapped out from under a click.
    const sig = JSON.stringify([versions, previewing?.id, editable, ctx.role()]);
    if (list.dataset.sig === sig) return;
    list.dataset.sig = sig;
    replaceChildren(
      list,
      versions.length === 0
        ? h('li', { class: 'muted empty' }, 'No versions yet.')
        : versions.map((v) =>
            h(
              'li',
              { class: `version${previewing?.id === v.id ? ' previewing' : ''}`, dataset: { versionId: String(v.id), kind: v.kind ?? '' } },
              h(
                'div',
                { class: 'version-head' },
                h('strong', { class: 'version-name' }, versionTitle(v)),
                v.revision != null && h('span', { class: 'muted version-revision' }, `r${v.revision}`),
              ),
              h(
                'div',
                { class: 'muted version-meta' },
                personName(v.created_by) && `${personName(v.created_by)} · `,
                v.created_at ? timeElement(v.created_at) : null,
              ),
              describeChanges(v.changes).length > 0 &&
                h('ul', { class: 'version-changes' }, describeChanges(v.changes).map((line) => h('li', null, line))),
              h(
                'div',
                { class: 'row version-actions' },
                h('button', { type: 'button', class: 'secondary version-preview' }, 'Preview'),
                h('button', { type: 'button', class: 'secondary version-restore', disabled: !editable }, 'Restore'),
              ),
            ),
          ),
    );
    for (const el of form.querySelectorAll('input, button')) /** @type {HTMLInputElement} */ (el).disabled = !editable;

    banner.hidden = !previewing;
    banner.dataset.versionId = previewing ? String(previewing.id) : '';
    if (previewing) {
      replaceChildren(
        banner,
        h('span', null, 'Previewing ', h('strong', null, versionTitle(previewing)), previewing.revision != null ? ` (revision ${previewing.revision})` : '', ': read-only.'),
        h('button', { type: 'button', class: 'version-restore', disabled: ctx.role() === 'viewer' }, 'Restore this version'),
        h('button', { type: 'button', id: 'preview-exit', class: 'secondary' }, 'Back to the live project'),
      );
    }
  }

  return { load, render, exitPreview, isPreviewing: () => previewing !== null };
}
