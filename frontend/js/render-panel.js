// The render panel of the project page: ask the server for a bounce (format,
// mastering, stems, current revision or a saved version), follow its progress
// from the project socket, cancel it, download the file. The server validates
// and decides everything; this only mirrors its rules to hide what would fail.

import { api } from './api.js';
import { h, replaceChildren, showError, messageOf, timeElement } from './dom.js';
import { formatBytes, formatDbtp, formatDuration, formatLufs, formatPercent } from './waveform.js';

/**
 * @typedef {'queued' | 'running' | 'done' | 'failed' | 'cancelled'} RenderStatus
 *
 * @typedef {object} Render
 * @property {number} id
 * @property {number} project_id
 * @property {string | null} requested_by
 * @property {number | null} requested_by_id
 * @property {number} revision
 * @property {{ id: number, name: string } | null} version
 * @property {'wav' | 'flac' | 'mp3'} format
 * @property {'16' | '24' | '32f' | null} bit_depth
 * @property {'320' | 'V2' | null} mp3_quality
 * @property {'none' | 'streaming' | 'apple' | 'ebu' | 'custom'} master
 * @property {number | null} master_lufs
 * @property {boolean} stems
 * @property {RenderStatus} status
 * @property {number} progress 0..1
 * @property {string} error
 * @property {boolean} cancel_requested
 * @property {boolean} cached served from an earlier identical render
 * @property {string} filename
 * @property {number | null} size
 * @property {number | null} duration_s
 * @property {number | null} lufs
 * @property {number | null} true_peak_dbtp
 * @property {number} attempts
 * @property {string} created_at
 * @property {string | null} download_url
 *
 * @typedef {{ format: 'wav' | 'flac' | 'mp3', bit_depth?: string, mp3_quality?: string }} FormatChoice
 *
 * @typedef {object} RenderRequest
 * @property {string} format
 * @property {string} [bit_depth]
 * @property {string} [mp3_quality]
 * @property {string | number} master
 * @property {boolean} stems
 * @property {number} [version]
 *
 * @typedef {object} PanelOptions
 * @property {number} projectId
 * @property {number} myId the signed-in user's id
 * @property {() => boolean} canCancelAll editors and owners may cancel anyone's render
 *
 * @typedef {object} RenderPanel
 * @property {(event: { type: string, [key: string]: any }) => void} onEvent feed it every socket event
 * @property {() => Promise<void>} refresh refetch renders and versions
 */

/** The format select's values and what each asks the server for. */
export const FORMATS = /** @type {const} */ ({
  wav16: { label: 'WAV 16-bit', request: { format: 'wav', bit_depth: '16' } },
  wav24: { label: 'WAV 24-bit', request: { format: 'wav', bit_depth: '24' } },
  wav32f: { label: 'WAV 32-bit float', request: { format: 'wav', bit_depth: '32f' } },
  flac16: { label: 'FLAC 16-bit', request: { format: 'flac', bit_depth: '16' } },
  flac24: { label: 'FLAC 24-bit', request: { format: 'flac', bit_depth: '24' } },
  mp3_320: { label: 'MP3 320 kbps', request: { format: 'mp3', mp3_quality: '320' } },
  mp3_v2: { label: 'MP3 V2 (VBR)', request: { format: 'mp3', mp3_quality: 'V2' } },
});

/** @type {ReadonlyArray<[string, string]>} */
export const MASTERS = [
  ['none', 'No mastering'],
  ['streaming', 'Streaming (−14 LUFS)'],
  ['apple', 'Apple Music (−16 LUFS)'],
  ['ebu', 'Broadcast, EBU R128 (−23 LUFS)'],
  ['custom', 'Custom loudness…'],
];

/**
 * The request body for the form's choices.
 * @param {{ format: string, master: string, masterLufs?: string, stems: boolean, source: string }} choice
 *   `source` is "current" or "version:<id>"
 * @returns {RenderRequest}
 */
export function renderRequest(choice) {
  const preset = FORMATS[/** @type {keyof typeof FORMATS} */ (choice.format)];
  if (!preset) throw new Error(`unknown format ${choice.format}`);
  /** @type {RenderRequest} */
  const body = { ...preset.request, master: choice.master, stems: choice.stems };
  if (choice.master === 'custom') {
    const lufs = Number(choice.masterLufs);
    // An empty box is sent as is, so the server's message explains the range.
    body.master = choice.masterLufs?.trim() && Number.isFinite(lufs) ? lufs : String(choice.masterLufs ?? '');
  }
  const version = /^version:(\d+)$/.exec(choice.source);
  if (version) body.version = Number(version[1]);
  return body;
}

const MASTER_LABEL = { streaming: 'streaming master', apple: 'Apple Music master', ebu: 'EBU R128 master' };

/**
 * "FLAC 24-bit · streaming master · stems · r42"
 * @param {Render} r
 */
export function describeRender(r) {
  const parts = [];
  if (r.format === 'mp3') parts.push(r.mp3_quality === 'V2' ? 'MP3 V2' : 'MP3 320 kbps');
  else parts.push(`${r.format.toUpperCase()} ${r.bit_depth === '32f' ? '32-bit float' : `${r.bit_depth}-bit`}`);
  if (r.master === 'custom') parts.push(`mastered to ${String(r.master_lufs).replace('-', '−')} LUFS`);
  else if (r.master !== 'none') parts.push(MASTER_LABEL[r.master]);
  if (r.stems) parts.push('stems');
  parts.push(r.version ? `version “${r.version.name || `r${r.revision}`}”` : `r${r.revision}`);
  return parts.join(' · ');
}

/** @param {Render} r */
export const isActive = (r) => r.status === 'queued' || r.status === 'running';

const STAGE = { queued: 0, running: 1, done: 2, failed: 2, cancelled: 2 };

/**
 * Whether `next` is newer news than `current`. REST answers and socket events
 * race (the POST's "queued" may land after the socket's "done"), so a job
 * never steps back, except into a retry (a higher attempt).
 * @param {Render | undefined} current
 * @param {Render} next
 */
export function isNewer(current, next) {
  if (!current) return true;
  if (next.attempts !== current.attempts) return next.attempts > current.attempts;
  if (STAGE[next.status] !== STAGE[current.status]) return STAGE[next.status] > STAGE[current.status];
  return true;
}

const STATUS_LABEL = { queued: 'Queued', running: 'Rendering', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };

/**
 * @param {HTMLElement} root the panel's section; its content after the heading is replaced
 * @param {PanelOptions} options
 * @returns {RenderPanel}
 */
export function mountRenderPanel(root, options) {
  const apiBase = `/api/projects/${options.projectId}`;
  /** Newest first. @type {Map<number, Render>} */
  let renders = new Map();
  /** @type {{ id: number, name: string, revision: number }[]} */
  let versions = [];
  let welcomed = false;

  const format = h('select', { name: 'format', id: 'render-format' }, Object.entries(FORMATS).map(([value, f]) => h('option', { value }, f.label)));
  format.value = 'wav24';
  const master = h('select', { name: 'master', id: 'render-master' }, MASTERS.map(([value, label]) => h('option', { value }, label)));
  const masterLufs = h('input', { name: 'master_lufs', id: 'render-master-lufs', type: 'number', min: -60, max: 0, step: 0.5, value: '-14', class: 'tiny', 'aria-label': 'Target loudness (LUFS)' });
  const lufsLabel = h('label', { hidden: true }, 'LUFS', masterLufs);
  master.addEventListener('change', () => {
    lufsLabel.hidden = master.value !== 'custom';
  });
  const stems = h('input', { name: 'stems', id: 'render-stems', type: 'checkbox' });
  const source = h('select', { name: 'source', id: 'render-source' });
  const button = h('button', { type: 'submit', id: 'render-button' }, 'Render');
  const form = h(
    'form',
    { id: 'render-form', class: 'render-form', 'aria-label': 'Render the project' },
    h(
      'div',
      { class: 'row' },
      h('label', null, 'What', source),
      h('label', null, 'Format', format),
      h('label', null, 'Mastering', master),
      lufsLabel,
      h('label', { class: 'checkbox' }, stems, ' Stems (zip of every track and the mix)'),
      button,
    ),
  );
  const list = h('ul', { class: 'render-list', 'aria-label': 'Renders', 'aria-live': 'polite' });
  replaceChildren(root, root.querySelector('h2'), form, list);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(form, null);
    button.disabled = true;
    try {
      const body = renderRequest({ format: format.value, master: master.value, masterLufs: masterLufs.value, stems: stems.checked, source: source.value });
      upsert(await api.post(`${apiBase}/renders`, body));
    } catch (err) {
      showError(form, messageOf(err));
    } finally {
      button.disabled = false;
    }
  });

  function renderSources() {
    const chosen = source.value || 'current';
    replaceChildren(
      source,
      h('option', { value: 'current' }, 'Current revision'),
      versions.map((v) => h('option', { value: `version:${v.id}` }, `${v.name || 'Checkpoint'} (r${v.revision})`)),
    );
    source.value = [...source.options].some((o) => o.value === chosen) ? chosen : 'current';
  }

  /** @param {number} id */
  const itemOf = (id) => list.querySelector(`li.render[data-render-id="${id}"]`);

  /** @param {Render} r */
  function canCancel(r) {
    return isActive(r) && !r.cancel_requested && (r.requested_by_id === options.myId || options.canCancelAll());
  }

  /**
   * @param {Render} r
   * @returns {HTMLLIElement}
   */
  function renderItem(r) {
    const active = isActive(r);
    const status = h('span', { class: 'badge render-status', dataset: { status: r.status } }, r.cancel_requested && active ? 'Cancelling…' : STATUS_LABEL[r.status]);
    /** @type {HTMLElement[]} */
    const details = [];
    if (r.status === 'done') {
      const figures = [r.duration_s != null && formatDuration(r.duration_s), r.lufs != null && formatLufs(r.lufs), r.true_peak_dbtp != null && formatDbtp(r.true_peak_dbtp), r.size != null && formatBytes(r.size)];
      details.push(h('span', { class: 'muted render-figures' }, figures.filter(Boolean).join(' · ')));
    }
    return h(
      'li',
      { class: 'render', dataset: { renderId: String(r.id), status: r.status, progress: String(r.progress) } },
      h(
        'div',
        { class: 'render-head' },
        h('span', { class: 'render-what' }, describeRender(r)),
        status,
        r.cached && h('span', { class: 'badge render-cached', title: 'The same render was already stored: served at once' }, 'cached'),
        h('span', { class: 'muted render-by' }, r.requested_by ?? 'deleted user', ', ', timeElement(r.created_at)),
      ),
      active &&
        h(
          'div',
          { class: 'upload-progress' },
          h('progress', { class: 'render-progress', max: 1, value: r.progress, 'aria-label': `Progress of render ${r.id}` }),
          h('span', { class: 'percent', 'aria-hidden': 'true' }, formatPercent(r.progress)),
        ),
      r.status === 'failed' && h('p', { class: 'error render-error' }, r.error || 'The render failed.'),
      h(
        'div',
        { class: 'row render-actions' },
        r.download_url && h('a', { class: 'button render-download', href: r.download_url, download: r.filename }, `Download ${r.filename}`),
        canCancel(r) && h('button', { type: 'button', class: 'secondary render-cancel', onclick: () => cancel(r) }, 'Cancel'),
        details,
      ),
    );
  }

  function renderList() {
    const items = [...renders.values()].map(renderItem);
    if (items.length === 0) replaceChildren(list, h('li', { class: 'empty muted' }, 'No renders yet.'));
    else replaceChildren(list, items);
  }

  /** @param {Render} r */
  function upsert(r) {
    const current = renders.get(r.id);
    if (!isNewer(current, r)) return;
    const isNew = !current;
    renders.set(r.id, r);
    if (isNew) {
      // Newest first.
      renders = new Map([...renders.entries()].sort((a, b) => b[0] - a[0]));
      renderList();
      return;
    }
    itemOf(r.id)?.replaceWith(renderItem(r));
  }

  /**
   * @param {number} id
   * @param {number} progress
   */
  function progressed(id, progress) {
    const r = renders.get(id);
    // A late event must not roll back a finished render.
    if (!r || !isActive(r) || progress < r.progress) return;
    if (r.status === 'queued') {
      upsert({ ...r, status: 'running', progress });
      return;
    }
    r.progress = progress;
    const li = itemOf(id);
    if (!(li instanceof HTMLElement)) return;
    li.dataset.progress = String(progress);
    const bar = li.querySelector('progress.render-progress');
    if (bar instanceof HTMLProgressElement) bar.value = progress;
    const pct = li.querySelector('.upload-progress .percent');
    if (pct) pct.textContent = formatPercent(progress);
  }

  /** @param {Render} r */
  async function cancel(r) {
    const li = itemOf(r.id);
    if (li) showError(li.querySelector('.render-actions') ?? li, null);
    try {
      upsert(await api.post(`${apiBase}/renders/${r.id}/cancel`, {}));
    } catch (err) {
      const anchor = itemOf(r.id)?.querySelector('.render-actions');
      if (anchor) showError(anchor, messageOf(err));
    }
  }

  async function refreshVersions() {
    try {
      const data = await api.get(`${apiBase}/versions`);
      versions = data.versions;
      renderSources();
    } catch {
      // The current revision stays renderable; the page shows access errors itself.
    }
  }

  async function refresh() {
    try {
      const data = await api.get(`${apiBase}/renders`);
      renders = new Map(data.renders.map((/** @type {Render} */ r) => [r.id, r]));
      renderList();
    } catch (err) {
      showError(list, messageOf(err));
    }
    await refreshVersions();
  }

  renderSources();
  renderList();
  void refresh();

  return {
    refresh,
    onEvent(event) {
      switch (event.type) {
        case 'render.updated':
          upsert(event.render);
          break;
        case 'render.progress':
          progressed(event.render_id, event.progress);
          break;
        case 'versions.changed':
          void refreshVersions();
          break;
        case 'hello':
          // Events sent while disconnected are lost: refetch after a reconnect.
          if (welcomed) void refresh();
          welcomed = true;
          break;
        default:
          break;
      }
    },
  };
}
