// The project page: renders the server's initial state into the template's
// mount points and keeps it live from the project WebSocket. Permissions are
// only mirrored here to hide controls that would fail; the server decides.

import { api, uploadWithProgress } from './api.js';
import { h, replaceChildren, showError, messageOf, timeElement } from './dom.js';
import { ProjectSocket, projectSocketUrl, CLOSE_NOT_ALLOWED } from './socket.js';
import { mountRenderPanel } from './render-panel.js';
import {
  drawWaveform,
  formatBytes,
  formatChannels,
  formatDbfs,
  formatDbtp,
  formatDuration,
  formatLufs,
  formatPercent,
  formatSampleRate,
  pickSamplesPerPixel,
  reducePeaks,
} from './waveform.js';

/**
 * @typedef {import('./api.js').Project} Project
 * @typedef {import('./api.js').Stem} Stem
 * @typedef {import('./api.js').Member} Member
 * @typedef {import('./api.js').ShareLink} ShareLink
 * @typedef {import('./api.js').Role} Role
 * @typedef {import('./waveform.js').Peaks} Peaks
 *
 * @typedef {object} InitialState
 * @property {Project} project
 * @property {{ id: number, username: string }} me
 * @property {Member[]} members
 * @property {ShareLink[]} links
 * @property {Stem[]} stems
 */

const ROLES = /** @type {const} */ (['owner', 'editor', 'viewer']);
const SAMPLE_RATES = [44100, 48000];
const NOTE_VALUES = [1, 2, 4, 8, 16];
const AUDIO_ACCEPT = 'audio/*,.wav,.wave,.aif,.aiff,.flac,.ogg,.oga,.mp3';

/** @param {string} id */
function mount(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`project page: #${id} is missing from the template`);
  return el;
}

/** @returns {InitialState} */
function readInitialState() {
  let data = JSON.parse(mount('project-state').textContent || 'null');
  // The view passes json_script a string it already encoded, so the state
  // arrives encoded twice; accept either form.
  if (typeof data === 'string') data = JSON.parse(data);
  return data;
}

const app = mount('project-app');
const projectId = Number(app.dataset.projectId);
const apiBase = `/api/projects/${projectId}`;
const initial = readInitialState();

const state = {
  project: initial.project,
  me: initial.me,
  /** @type {Role} */
  role: /** @type {Role} */ (app.dataset.role || initial.project.role || 'viewer'),
  members: initial.members,
  links: initial.links,
  /** Insertion order is display order (the server sends oldest first). */
  stems: new Map(initial.stems.map((s) => [s.id, s])),
  /** The project was deleted or we lost access: everything is read-only. */
  gone: false,
};

const canEdit = () => !state.gone && (state.role === 'owner' || state.role === 'editor');
const isOwner = () => !state.gone && state.role === 'owner';

// --- page banner and connection state -----------------------------------------

const banner = h('div', { id: 'page-banner' });
app.prepend(banner);

const connectionEl = h('span', { id: 'connection-status', class: 'connection', dataset: { state: 'connecting' } }, 'Connecting…');

/** @param {string} message */
function projectGone(message) {
  if (state.gone) return;
  state.gone = true;
  socket.stop();
  replaceChildren(
    banner,
    h('div', { class: 'card banner error', role: 'alert' }, message, ' ', h('a', { href: '/' }, 'Back to your projects')),
  );
  for (const el of app.querySelectorAll('input, select, button, textarea')) {
    if (el instanceof HTMLInputElement || el instanceof HTMLSelectElement || el instanceof HTMLButtonElement || el instanceof HTMLTextAreaElement) {
      el.disabled = true;
    }
  }
}

// --- project settings ----------------------------------------------------------

const settingsEl = mount('project-settings');
/** Set while the user has unsaved edits, so live updates do not overwrite them. */
let settingsDirty = false;

function renderSettings() {
  const p = state.project;
  document.title = `${p.name} · Roomtone`;
  const meta = h(
    'p',
    { class: 'muted project-meta' },
    'You are ',
    h('strong', { class: 'my-role' }, state.role),
    ' · ',
    connectionEl,
  );
  if (!canEdit()) {
    replaceChildren(
      settingsEl,
      h('h1', { id: 'project-name' }, p.name),
      meta,
      h(
        'dl',
        { class: 'summary' },
        h('div', null, h('dt', null, 'Sample rate'), h('dd', null, formatSampleRate(p.sample_rate))),
        h('div', null, h('dt', null, 'Tempo'), h('dd', null, `${p.tempo_bpm} BPM`)),
        h('div', null, h('dt', null, 'Time signature'), h('dd', null, `${p.time_signature[0]}/${p.time_signature[1]}`)),
      ),
    );
    return;
  }
  const form = h(
    'form',
    { id: 'settings-form', class: 'settings-form', 'aria-label': 'Project settings' },
    h(
      'div',
      { class: 'row' },
      h('label', { class: 'grow' }, 'Name', h('input', { id: 'settings-name', name: 'name', required: true, maxlength: 200, autocomplete: 'off' })),
      h(
        'label',
        null,
        'Sample rate',
        h('select', { id: 'settings-sample-rate', name: 'sample_rate' }, SAMPLE_RATES.map((r) => h('option', { value: String(r) }, formatSampleRate(r)))),
      ),
      h('label', null, 'Tempo (BPM)', h('input', { id: 'settings-tempo', name: 'tempo_bpm', type: 'number', min: 20, max: 400, step: 'any', inputmode: 'decimal', class: 'short' })),
      h(
        'fieldset',
        { class: 'time-signature' },
        h('legend', null, 'Time signature'),
        h(
          'div',
          { class: 'ts-inputs' },
          h('input', { id: 'settings-ts-beats', name: 'ts_beats', type: 'number', min: 1, max: 32, step: 1, class: 'tiny', 'aria-label': 'Beats per bar' }),
          h('span', { 'aria-hidden': 'true' }, '/'),
          h('select', { id: 'settings-ts-unit', name: 'ts_unit', 'aria-label': 'Note value' }, NOTE_VALUES.map((n) => h('option', { value: String(n) }, String(n)))),
        ),
      ),
      h('button', { id: 'settings-save', type: 'submit' }, 'Save'),
    ),
    h('p', { class: 'form-status muted', role: 'status' }),
  );
  form.addEventListener('input', () => {
    settingsDirty = true;
  });
  form.addEventListener('submit', saveSettings);
  replaceChildren(settingsEl, h('h1', { id: 'project-name' }, p.name), meta, form);
  fillSettingsForm();
}

function fillSettingsForm() {
  const form = document.getElementById('settings-form');
  if (!(form instanceof HTMLFormElement)) return;
  const p = state.project;
  field(form, 'name').value = p.name;
  field(form, 'sample_rate').value = String(p.sample_rate);
  field(form, 'tempo_bpm').value = String(p.tempo_bpm);
  field(form, 'ts_beats').value = String(p.time_signature[0]);
  field(form, 'ts_unit').value = String(p.time_signature[1]);
  settingsDirty = false;
}

/**
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {HTMLInputElement | HTMLSelectElement}
 */
function field(form, name) {
  const el = form.elements.namedItem(name);
  if (el instanceof HTMLInputElement || el instanceof HTMLSelectElement) return el;
  throw new Error(`form field ${name} is missing`);
}

/** @param {SubmitEvent} e */
async function saveSettings(e) {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.currentTarget);
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
  const status = /** @type {HTMLElement} */ (form.querySelector('.form-status'));
  const body = {
    name: field(form, 'name').value,
    sample_rate: Number(field(form, 'sample_rate').value),
    tempo_bpm: Number(field(form, 'tempo_bpm').value),
    time_signature: [Number(field(form, 'ts_beats').value), Number(field(form, 'ts_unit').value)],
  };
  button.disabled = true;
  status.textContent = 'Saving…';
  showError(form, null);
  try {
    const project = await api.patch(apiBase, body);
    state.project = { ...state.project, ...project };
    fillSettingsForm();
    updateProjectName();
    status.textContent = 'Saved.';
  } catch (err) {
    status.textContent = '';
    showError(form, messageOf(err));
  } finally {
    button.disabled = state.gone;
  }
}

function updateProjectName() {
  const heading = document.getElementById('project-name');
  if (heading) heading.textContent = state.project.name;
  document.title = `${state.project.name} · Roomtone`;
}

/** @param {Project} project */
function projectUpdated(project) {
  // Broadcast payloads carry no role: keep ours.
  state.project = { ...state.project, ...project, role: state.role };
  if (!canEdit()) {
    renderSettings();
    return;
  }
  updateProjectName();
  if (!settingsDirty) fillSettingsForm();
}

// --- stem upload ----------------------------------------------------------------

const uploadEl = mount('stem-upload');

function renderUpload() {
  if (!canEdit()) {
    replaceChildren(uploadEl, h('p', { class: 'muted' }, 'Viewers can listen to and download stems; editors and owners upload them.'));
    return;
  }
  const file = h('input', { id: 'stem-file', name: 'file', type: 'file', accept: AUDIO_ACCEPT, required: true });
  const name = h('input', { id: 'stem-name', name: 'name', maxlength: 200, autocomplete: 'off', placeholder: 'Defaults to the file name' });
  const button = h('button', { id: 'upload-button', type: 'submit' }, 'Upload');
  const progress = h('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': 'Upload progress' });
  const percent = h('span', { id: 'upload-percent', class: 'percent' }, '0%');
  const status = h('p', { id: 'upload-status', class: 'muted', role: 'status' });
  const progressRow = h('div', { class: 'upload-progress', hidden: true }, progress, percent);
  const form = h(
    'form',
    { id: 'upload-form', class: 'upload-form', 'aria-label': 'Upload a stem' },
    h(
      'div',
      { class: 'row' },
      h('label', { for: 'stem-file', class: 'grow' }, 'Audio file', file),
      h('label', { for: 'stem-name', class: 'grow' }, 'Name (optional)', name),
      button,
    ),
    h('p', { class: 'hint muted' }, 'WAV, AIFF, FLAC, OGG Vorbis or MP3; mono or stereo.'),
    progressRow,
    status,
  );

  /** @param {number} fraction */
  const setProgress = (fraction) => {
    progress.value = Math.round(fraction * 100);
    percent.textContent = formatPercent(fraction);
    // Once the bytes are sent the server still decodes and checks the file.
    if (fraction >= 1) status.textContent = 'Checking the file…';
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) {
      showError(form, 'Choose an audio file first.');
      file.focus();
      return;
    }
    showError(form, null);
    for (const el of [file, name, button]) el.disabled = true;
    form.setAttribute('aria-busy', 'true');
    progressRow.hidden = false;
    setProgress(0);
    status.textContent = `Uploading “${chosen.name}”…`;
    try {
      const stem = await uploadWithProgress(`${apiBase}/stems`, chosen, name.value.trim() || null, setProgress);
      setProgress(1);
      // The socket may already have told us, and even that analysis finished.
      if (!state.stems.has(stem.id)) upsertStem(stem);
      status.textContent = `Uploaded “${stem.name}”. Analysing…`;
      form.reset();
    } catch (err) {
      progressRow.hidden = true;
      status.textContent = '';
      showError(form, messageOf(err));
    } finally {
      for (const el of [file, name, button]) el.disabled = state.gone;
      form.removeAttribute('aria-busy');
    }
  });
  replaceChildren(uploadEl, form);
}

// --- stems ------------------------------------------------------------------------

const stemList = mount('stem-list');

/** @param {number} id */
function stemElement(id) {
  return stemList.querySelector(`li.stem[data-stem-id="${id}"]`);
}

function renderStems() {
  const items = [...state.stems.values()].map(renderStem);
  if (items.length === 0) {
    replaceChildren(stemList, h('li', { class: 'empty muted' }, canEdit() ? 'No stems yet: upload the first one above.' : 'No stems yet.'));
    return;
  }
  replaceChildren(stemList, items);
}

/**
 * @param {Stem} stem
 * @param {{ onlyIfNew?: boolean }} [options]
 */
function upsertStem(stem, options = {}) {
  if (options.onlyIfNew && state.stems.has(stem.id)) return;
  state.stems.set(stem.id, stem);
  const li = renderStem(stem);
  const old = stemElement(stem.id);
  if (old) {
    // Keep a playing preview playing across a re-render.
    const oldAudio = old.querySelector('audio');
    const newAudio = li.querySelector('audio');
    if (oldAudio && newAudio && oldAudio.getAttribute('src') === newAudio.getAttribute('src')) newAudio.replaceWith(oldAudio);
    old.replaceWith(li);
  } else {
    stemList.querySelector('li.empty')?.remove();
    stemList.append(li);
  }
}

/** @param {number} id */
function removeStem(id) {
  state.stems.delete(id);
  stemElement(id)?.remove();
  if (state.stems.size === 0) renderStems();
}

/**
 * @param {number} id
 * @param {number} progress 0..1
 */
function stemProgress(id, progress) {
  const stem = state.stems.get(id);
  // A late progress event must not roll back a finished analysis.
  if (!stem || stem.status !== 'analysing') return;
  stem.progress = progress;
  const li = stemElement(id);
  const bar = li?.querySelector('progress.stem-progress');
  if (bar instanceof HTMLProgressElement) bar.value = progress;
  const pct = li?.querySelector('.stem-status .percent');
  if (pct) pct.textContent = formatPercent(progress);
}

const STATUS_LABEL = { analysing: 'Analysing', ready: 'Ready', failed: 'Failed' };

/**
 * @param {Stem} stem
 * @returns {HTMLLIElement}
 */
function renderStem(stem) {
  const ready = stem.status === 'ready';
  const headingId = `stem-${stem.id}-name`;

  const status = h(
    'span',
    { class: 'stem-status badge', dataset: { status: stem.status } },
    STATUS_LABEL[stem.status] ?? stem.status,
    // The bar carries the value for assistive tech; the number would make the
    // live list chatter on every progress event.
    stem.status === 'analysing' && h('span', { class: 'percent', 'aria-hidden': 'true' }, formatPercent(stem.progress)),
  );

  /** @type {HTMLElement} */
  let wave;
  if (stem.status === 'analysing') {
    wave = h(
      'div',
      { class: 'wave-placeholder analysing' },
      h('span', { class: 'muted' }, 'Measuring loudness and drawing the waveform…'),
      h('progress', { class: 'stem-progress', max: 1, value: stem.progress, 'aria-label': `Analysis of ${stem.name}` }),
    );
  } else if (stem.status === 'failed') {
    wave = h('p', { class: 'error', role: 'alert' }, stem.error || 'The analysis failed.');
  } else if (stem.peaks_url) {
    wave = h('canvas', { class: 'waveform', role: 'img', 'aria-label': `Waveform of ${stem.name}`, dataset: { drawn: 'false' } });
    waveformObserver.observe(wave);
  } else {
    wave = h('div', { class: 'wave-placeholder muted' }, 'No waveform.');
  }

  /**
   * @param {string} label
   * @param {string | Node} value
   * @param {string} [cls]
   * @param {number | null} [raw] machine-readable value for tests and tooltips
   */
  const item = (label, value, cls, raw) =>
    h('div', null, h('dt', null, label), h('dd', { class: cls, dataset: raw === undefined ? undefined : { value: raw === null ? '' : String(raw) } }, value));

  // Before analysis there is no value yet; after it, null means silence.
  /** @param {number | null} v @param {(v: number | null) => string} fmt */
  const level = (v, fmt) => (ready ? fmt(v) : '—');

  const actions = h(
    'div',
    { class: 'stem-actions' },
    h('a', { class: 'button secondary stem-download', href: stem.download_url, download: stem.original_filename || true, 'aria-label': `Download ${stem.name}` }, 'Download'),
    canEdit() &&
      h(
        'button',
        { type: 'button', class: 'danger stem-delete', 'aria-label': `Delete ${stem.name}`, onclick: () => deleteStem(stem, actions) },
        'Delete',
      ),
  );

  return h(
    'li',
    { class: 'stem', dataset: { stemId: String(stem.id), status: stem.status }, 'aria-labelledby': headingId },
    h('div', { class: 'stem-head' }, h('h3', { id: headingId, class: 'stem-name' }, stem.name), status, actions),
    h('div', { class: 'stem-wave' }, wave),
    h(
      'dl',
      { class: 'stem-levels' },
      item('Loudness', level(stem.integrated_lufs, formatLufs), 'stem-lufs', ready ? stem.integrated_lufs : undefined),
      item('True peak', level(stem.true_peak_dbtp, formatDbtp), 'stem-true-peak', ready ? stem.true_peak_dbtp : undefined),
      item('Sample peak', level(stem.sample_peak_dbfs, formatDbfs), 'stem-sample-peak', ready ? stem.sample_peak_dbfs : undefined),
    ),
    h(
      'dl',
      { class: 'stem-meta' },
      item('Format', stem.subtype ? `${stem.format.toUpperCase()} · ${stem.subtype}` : stem.format.toUpperCase(), 'stem-format'),
      item('Duration', formatDuration(stem.duration_s), 'stem-duration'),
      item('Sample rate', formatSampleRate(stem.sample_rate), 'stem-rate'),
      item('Channels', formatChannels(stem.channels), 'stem-channels'),
      item('Size', formatBytes(stem.size), 'stem-size'),
      item('Uploaded by', stem.uploader ?? 'deleted user', 'stem-uploader'),
      item('Added', timeElement(stem.created_at), 'stem-date'),
    ),
    stem.preview_url
      ? h('audio', { class: 'stem-preview', controls: true, preload: 'none', src: stem.preview_url, 'aria-label': `Preview of ${stem.name}` })
      : null,
  );
}

/**
 * @param {Stem} stem
 * @param {HTMLElement} anchor where to show an error
 */
async function deleteStem(stem, anchor) {
  if (!window.confirm(`Delete the stem “${stem.name}”? This cannot be undone.`)) return;
  showError(anchor, null);
  try {
    await api.delete(`${apiBase}/stems/${stem.id}`);
    removeStem(stem.id);
  } catch (err) {
    showError(anchor, messageOf(err));
  }
}

// --- waveforms --------------------------------------------------------------------

/**
 * Peaks by peaks URL, with the samples-per-pixel they were asked for, so a
 * resize only refetches when the canvas grows enough to need finer data.
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
  const peaks = api.get(`${url}${sep}samples_per_pixel=${spp}`);
  peaksCache.set(url, { spp, peaks });
  peaks.catch(() => {
    // Let the next draw try again rather than caching the failure.
    if (peaksCache.get(url)?.peaks === peaks) peaksCache.delete(url);
  });
  return peaks;
}

/** @param {HTMLCanvasElement} canvas */
async function drawCanvas(canvas) {
  const li = canvas.closest('li.stem');
  const stem = li instanceof HTMLElement ? state.stems.get(Number(li.dataset.stemId)) : undefined;
  if (!stem || !stem.peaks_url || !canvas.isConnected) return;
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round((canvas.clientWidth || 600) * dpr));
  const height = Math.max(1, Math.round((canvas.clientHeight || 80) * dpr));
  let peaks;
  try {
    peaks = await loadPeaks(stem.peaks_url, pickSamplesPerPixel(stem.duration_s, stem.sample_rate, width));
  } catch (err) {
    if (!canvas.isConnected) return;
    canvas.dataset.drawn = 'error';
    showError(canvas, `Waveform unavailable: ${messageOf(err)}`);
    return;
  }
  if (!canvas.isConnected) return;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  canvas.width = width;
  canvas.height = height;
  // Colours live in the stylesheet so the theme stays in one place.
  const css = getComputedStyle(canvas);
  drawWaveform(ctx, reducePeaks(peaks, width), height, {
    color: css.getPropertyValue('--wave-color').trim() || undefined,
    axisColor: css.getPropertyValue('--wave-axis').trim() || undefined,
    gap: Math.round(6 * dpr),
  });
  showError(canvas, null);
  canvas.dataset.drawn = 'true';
}

// Fires once when a canvas is first laid out, then on every size change.
const waveformObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const canvas = entry.target;
    if (canvas instanceof HTMLCanvasElement && canvas.isConnected) void drawCanvas(canvas);
    else waveformObserver.unobserve(canvas);
  }
});

// --- members ----------------------------------------------------------------------

const memberEl = mount('member-list');

function renderMembers() {
  const list = h(
    'ul',
    { class: 'member-list', 'aria-label': 'Members' },
    state.members.map((m) => {
      const me = m.user_id === state.me.id;
      /** @type {HTMLElement} */
      let role;
      if (isOwner()) {
        const select = h(
          'select',
          { class: 'member-role', 'aria-label': `Role of ${m.username}` },
          ROLES.map((r) => h('option', { value: r }, r)),
        );
        select.value = m.role;
        select.addEventListener('change', () => changeRole(m, select));
        role = select;
      } else {
        role = h('span', { class: 'badge member-role', dataset: { role: m.role } }, m.role);
      }
      return h(
        'li',
        { class: 'member', dataset: { userId: String(m.user_id), role: m.role } },
        h('span', { class: 'member-name' }, m.username, me && h('span', { class: 'muted' }, ' (you)')),
        role,
        me
          ? h('button', { id: 'leave-button', type: 'button', class: 'secondary', onclick: leaveProject }, 'Leave project')
          : isOwner() &&
              h('button', { type: 'button', class: 'danger member-remove', 'aria-label': `Remove ${m.username}`, onclick: () => removeMember(m) }, 'Remove'),
      );
    }),
  );
  /** @type {HTMLElement[]} */
  const children = [list];
  if (isOwner()) {
    const username = h('input', { id: 'invite-username', name: 'username', required: true, autocomplete: 'off', spellcheck: 'false' });
    const role = h('select', { id: 'invite-role', name: 'role' }, ROLES.map((r) => h('option', { value: r }, r)));
    role.value = 'editor';
    const form = h(
      'form',
      { id: 'invite-form', class: 'row', 'aria-label': 'Invite a member' },
      h('label', { class: 'grow' }, 'Username', username),
      h('label', null, 'Role', role),
      h('button', { id: 'invite-button', type: 'submit' }, 'Invite'),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      showError(form, null);
      try {
        await api.post(`${apiBase}/members`, { username: username.value.trim(), role: role.value });
        await refreshMembers();
        const again = document.getElementById('invite-username');
        again?.focus();
      } catch (err) {
        showError(form, messageOf(err));
      }
    });
    children.push(h('h3', null, 'Invite'), form);
  }
  replaceChildren(memberEl, children);
}

/** The member list is the anchor for errors about members. */
/** @param {string | null} message */
function memberError(message) {
  const list = memberEl.querySelector('ul.member-list');
  if (list) showError(list, message);
}

/**
 * @param {Member} member
 * @param {HTMLSelectElement} select
 */
async function changeRole(member, select) {
  memberError(null);
  try {
    await api.patch(`${apiBase}/members/${member.user_id}`, { role: select.value });
    await refreshMembers();
  } catch (err) {
    select.value = member.role;
    memberError(messageOf(err));
  }
}

/** @param {Member} member */
async function removeMember(member) {
  if (!window.confirm(`Remove ${member.username} from the project?`)) return;
  memberError(null);
  try {
    await api.delete(`${apiBase}/members/${member.user_id}`);
    await refreshMembers();
  } catch (err) {
    memberError(messageOf(err));
  }
}

async function leaveProject() {
  if (!window.confirm('Leave this project? You will need a new invitation to come back.')) return;
  memberError(null);
  try {
    await api.delete(`${apiBase}/members/${state.me.id}`);
    state.gone = true;
    socket.stop();
    window.location.assign('/');
  } catch (err) {
    memberError(messageOf(err));
  }
}

async function refreshMembers() {
  if (state.gone) return;
  try {
    const { members } = await api.get(`${apiBase}/members`);
    const mine = members.find((/** @type {Member} */ m) => m.user_id === state.me.id);
    if (!mine) {
      projectGone('You are no longer a member of this project.');
      return;
    }
    if (mine.role !== state.role) {
      // What the page shows (and which sections the server renders at all)
      // depends on the role: start afresh.
      window.location.reload();
      return;
    }
    state.members = members;
    renderMembers();
  } catch (err) {
    handleLostAccess(err);
  }
}

// --- share links --------------------------------------------------------------------

const linkEl = document.getElementById('link-list');

/** @param {ShareLink} link */
function linkState(link) {
  if (link.revoked) return 'revoked';
  return new Date(link.expires_at).getTime() <= Date.now() ? 'expired' : 'active';
}

function renderLinks() {
  if (!linkEl || !isOwner()) return;
  const role = h('select', { id: 'link-role', name: 'role' }, h('option', { value: 'editor' }, 'editor'), h('option', { value: 'viewer' }, 'viewer'));
  role.value = 'viewer';
  const days = h('input', { id: 'link-days', name: 'expires_in_days', type: 'number', min: 1, max: 365, step: 1, value: '7', class: 'tiny' });
  const form = h(
    'form',
    { id: 'link-form', class: 'row', 'aria-label': 'Create a share link' },
    h('label', null, 'Role', role),
    h('label', null, 'Expires in (days)', days),
    h('button', { id: 'link-create', type: 'submit' }, 'Create link'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(form, null);
    /** @type {{ role: string, expires_in_days?: number }} */
    const body = { role: role.value };
    if (days.value.trim()) body.expires_in_days = Number(days.value);
    try {
      const link = await api.post(`${apiBase}/links`, body);
      state.links = [...state.links.filter((x) => x.id !== link.id), link];
      renderLinks();
      const input = linkEl.querySelector(`li.link[data-link-id="${link.id}"] input.link-url`);
      if (input instanceof HTMLInputElement) {
        input.focus();
        input.select();
      }
    } catch (err) {
      showError(form, messageOf(err));
    }
  });

  // Newest first: the one just made is the one wanted.
  const links = [...state.links].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
  const list = links.length
    ? h('ul', { class: 'link-list', 'aria-label': 'Share links' }, links.map(renderLink))
    : h('p', { class: 'muted link-list' }, 'No share links yet. A link lets anyone with an account join with its role.');
  replaceChildren(linkEl, form, list);
}

/** @param {ShareLink} link */
function renderLink(link) {
  const st = linkState(link);
  const url = new URL(link.url, window.location.origin).href;
  const copy = h('button', { type: 'button', class: 'secondary link-copy', 'aria-label': `Copy the ${link.role} link` }, 'Copy');
  const input = h('input', { class: 'link-url', readonly: true, value: url, 'aria-label': `Share link (${link.role})` });
  input.addEventListener('focus', () => input.select());
  copy.addEventListener('click', async () => {
    copy.textContent = (await copyText(input)) ? 'Copied' : 'Press Ctrl+C';
    setTimeout(() => {
      copy.textContent = 'Copy';
    }, 2000);
  });
  return h(
    'li',
    { class: 'link', dataset: { linkId: String(link.id), state: st } },
    h(
      'div',
      { class: 'link-info' },
      h('span', { class: 'badge', dataset: { role: link.role } }, link.role),
      ' ',
      st === 'active'
        ? h('span', { class: 'muted' }, 'expires ', timeElement(link.expires_at))
        : h('span', { class: 'muted link-state' }, st),
    ),
    st === 'active' &&
      h(
        'div',
        { class: 'row link-actions' },
        input,
        copy,
        h('button', { type: 'button', class: 'danger link-revoke', 'aria-label': `Revoke the ${link.role} link`, onclick: () => revokeLink(link) }, 'Revoke'),
      ),
  );
}

/**
 * The clipboard API needs a secure context; plain-HTTP LAN installs fall
 * back to the old selection copy.
 * @param {HTMLInputElement} input
 */
async function copyText(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

/** @param {ShareLink} link */
async function revokeLink(link) {
  if (!linkEl) return;
  const anchor = linkEl.querySelector('#link-form') ?? linkEl;
  showError(anchor, null);
  try {
    await api.delete(`${apiBase}/links/${link.id}`);
    state.links = state.links.map((x) => (x.id === link.id ? { ...x, revoked: true } : x));
    renderLinks();
  } catch (err) {
    showError(anchor, messageOf(err));
  }
}

// --- live updates -----------------------------------------------------------------

/** @param {unknown} err */
function handleLostAccess(err) {
  const status = err && typeof err === 'object' && 'status' in err ? err.status : 0;
  if (status === 404) projectGone('This project no longer exists, or you are no longer a member.');
  else if (status === 403) projectGone('You no longer have access to this project.');
}

/** Events sent while we were disconnected are lost: reload everything. */
async function resync() {
  try {
    const [project, stems] = await Promise.all([api.get(apiBase), api.get(`${apiBase}/stems`)]);
    if (project.role && project.role !== state.role) {
      window.location.reload();
      return;
    }
    projectUpdated(project);
    state.stems = new Map(stems.stems.map((/** @type {Stem} */ s) => [s.id, s]));
    renderStems();
    await refreshMembers();
    if (isOwner()) {
      const { links } = await api.get(`${apiBase}/links`);
      state.links = links;
      renderLinks();
    }
  } catch (err) {
    handleLostAccess(err);
  }
}

let welcomed = false;

const renderPanel = mountRenderPanel(mount('renders'), { projectId, myId: state.me.id, canCancelAll: canEdit });

/** @param {{ type: string, [key: string]: any }} event */
function onEvent(event) {
  if (state.gone) return;
  renderPanel.onEvent(event);
  switch (event.type) {
    case 'hello':
      if (welcomed) void resync();
      welcomed = true;
      break;
    case 'stem.added':
      upsertStem(event.stem, { onlyIfNew: true });
      break;
    case 'stem.updated':
      upsertStem(event.stem);
      break;
    case 'stem.progress':
      stemProgress(event.stem_id, event.progress);
      break;
    case 'stem.deleted':
      removeStem(event.stem_id);
      break;
    case 'project.updated':
      projectUpdated(event.project);
      break;
    case 'members.changed':
      void refreshMembers();
      break;
    case 'project.deleted':
      projectGone('This project was deleted.');
      break;
    case 'error':
      console.warn('project socket:', event.message);
      break;
    default:
      // Newer servers may send more: ignoring unknown events keeps old tabs working.
      break;
  }
}

const CONNECTION_TEXT = { connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', closed: 'Offline' };

const socket = new ProjectSocket(projectSocketUrl(window.location, projectId), {
  onEvent,
  onState(st, detail) {
    connectionEl.dataset.state = st;
    connectionEl.textContent = CONNECTION_TEXT[st];
    connectionEl.title = st === 'open' ? 'Changes by others appear as they happen' : '';
    if (st === 'closed' && detail?.code === CLOSE_NOT_ALLOWED) {
      projectGone('You no longer have access to this project.');
    }
  },
});

renderSettings();
renderUpload();
renderStems();
renderMembers();
renderLinks();
socket.start();
