// The multitrack editor page: wires the project socket to the document sync
// (editor/state.js) and the parts of the page (timeline, mixer, comments,
// presence, versions...). Permissions are only mirrored to disable controls
// that would fail; the server decides (docs/protocol.md).

import { api } from './api.js';
import { h, messageOf, replaceChildren, showError } from './dom.js';
import { CLOSE_NOT_ALLOWED, ProjectSocket, projectSocketUrl } from './socket.js';
import { EditorSync, PROJECT_ID, projectOf, toDocState } from './editor/state.js';
import { GESTURE_INTERVAL_MS, GestureOverlay, throttle } from './editor/gestures.js';
import { PresenceBook, renderPresence } from './editor/presence.js';
import { randomId } from './editor/ids.js';
import { appendKey, formatTime, snap } from './editor/clipmath.js';
import { createTimeline } from './editor/timeline.js';
import { createMixer } from './editor/mixer.js';
import { createInspector, splitAt, splitTargets } from './editor/inspector.js';
import { createMarkers } from './editor/markers.js';
import { createComments } from './editor/comments.js';
import { createStems } from './editor/stems.js';
import { createVersions } from './editor/versions.js';

/**
 * @typedef {import('./api.js').Stem} Stem
 * @typedef {import('./api.js').Role} Role
 * @typedef {import('./api.js').Project} Project
 * @typedef {import('./socket.js').SocketState} SocketState
 * @typedef {import('./editor/state.js').DocState} DocState
 * @typedef {import('./editor/state.js').Op} Op
 * @typedef {import('./editor/state.js').Message} Message
 * @typedef {import('./editor/context.js').EditorContext} EditorContext
 *
 * @typedef {object} InitialState
 * @property {Project} project
 * @property {{ id: number, username: string }} me
 * @property {Stem[]} stems
 */

const ROLES = ['owner', 'editor', 'viewer'];
const SAMPLE_RATES = [44100, 48000];
const NOTE_VALUES = [1, 2, 4, 8, 16];
/** Presence carries at most this many selected ids (§6). */
const MAX_SELECTION = 100;

/** @param {string} id */
function mount(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`editor page: #${id} is missing from the template`);
  return el;
}

/** @returns {InitialState} */
function readInitialState() {
  let data = JSON.parse(mount('editor-state').textContent || 'null');
  // The state may arrive as a JSON string encoded twice; accept either form.
  if (typeof data === 'string') data = JSON.parse(data);
  return data;
}

const app = mount('editor-app');
const toolbar = mount('editor-toolbar');
const projectId = Number(app.dataset.projectId);
const apiBase = `/api/projects/${projectId}`;
const initial = readInitialState();

const page = {
  /** @type {Role} */
  role: /** @type {Role} */ (app.dataset.role || initial.project.role || 'viewer'),
  /** The project was deleted or we lost access: everything is read-only. */
  gone: false,
  /** @type {SocketState} */
  socketState: 'connecting',
  welcomed: false,
  /** @type {Set<string>} selected clip ids */
  selection: new Set(),
  playhead: 0,
  /** @type {DocState | null} a version's state under preview */
  preview: null,
};

const sync = new EditorSync({ id: initial.me.id, name: initial.me.username });
const presence = new PresenceBook();
const gestures = new GestureOverlay();
/** @type {Map<number, Stem>} */
const stems = new Map(initial.stems.map((s) => [s.id, s]));

const canEdit = () => !page.gone && sync.loaded && !page.preview && (page.role === 'owner' || page.role === 'editor');
const canComment = () => !page.gone && sync.loaded;

// --- errors and status ----------------------------------------------------------

/** @param {string | null} message */
function alertMessage(message) {
  showError(toolbar, message);
}

// A click on the alert dismisses it.
app.addEventListener('click', (e) => {
  const target = e.target;
  if (target instanceof HTMLElement && target.matches('.error[role=alert]') && target.previousElementSibling === toolbar) {
    alertMessage(null);
  }
});

const statusEl = mount('connection-status');
const revisionEl = mount('editor-revision');

function renderStatus() {
  const st = page.gone ? 'closed' : page.socketState;
  const text = st === 'open' ? (sync.loaded ? 'connected' : 'connecting') : st;
  statusEl.dataset.state = st === 'open' && !sync.loaded ? 'connecting' : st;
  statusEl.textContent = text;
  if (sync.loaded) revisionEl.textContent = String(sync.revision);
  app.dataset.loaded = String(sync.loaded);
  app.dataset.role = page.role;
  app.dataset.preview = String(Boolean(page.preview));
  const roleEl = app.querySelector('.my-role');
  if (roleEl) roleEl.textContent = page.role;
}

/** @param {string} message */
function projectGone(message) {
  if (page.gone) return;
  page.gone = true;
  socket.stop();
  const banner = h('div', { class: 'card banner error', role: 'alert' }, message, ' ', h('a', { href: '/' }, 'Back to your projects'));
  app.prepend(banner);
  renderAll();
}

// --- sending ----------------------------------------------------------------------

/** @param {Message} msg */
function send(msg) {
  return socket.send(msg);
}

/** @param {Message[]} messages */
function sendAll(messages) {
  for (const msg of messages) send(msg);
}

/**
 * Propose an edit. Unsent edits (while disconnected) stay in the queue and
 * go with the resend after the next hello.
 * @param {Op[]} ops
 */
function edit(ops) {
  if (ops.length === 0) return;
  const conversation = ops.every((op) => op.kind === 'comment');
  if (conversation ? !canComment() : !canEdit()) return;
  sendAll(sync.edit(ops));
  scheduleRender();
}

/** @param {'undo' | 'redo'} type */
function undoRedo(type) {
  if (!canEdit()) return;
  const id = sync.nextOpId();
  if (!id) return;
  // Not queued like edits: an undo resent after a drop could undo twice.
  if (!send({ type, client_op_id: id })) alertMessage(`Not connected: ${type} again once the connection is back.`);
}

// Our selection and playhead, merged and rate-limited (§6: at most 20/s).
/** @type {Record<string, any>} */
let presenceDraft = {};
const flushPresence = throttle(() => {
  const fields = presenceDraft;
  presenceDraft = {};
  if (Object.keys(fields).length) send({ type: 'presence', ...fields });
}, GESTURE_INTERVAL_MS);

/** @param {{ selection?: string[], playhead?: number }} fields */
function announce(fields) {
  Object.assign(presenceDraft, fields);
  presence.updateSelf(fields);
  flushPresence();
}

// --- the context every part gets --------------------------------------------------

/** @type {EditorContext} */
const ctx = {
  projectId,
  apiBase,
  me: initial.me,
  doc: () => page.preview ?? gestures.apply(sync.view()),
  live: () => sync.view(),
  loaded: () => sync.loaded,
  canEdit,
  canComment,
  role: () => page.role,
  newId: () => randomId(),
  edit,
  send,
  stems,
  sourceLength: (stemId) => (stemId === null ? null : stems.get(stemId)?.duration_s ?? null),
  showError: alertMessage,
  pxPerSecond: () => {
    const v = Number(mount('timeline').dataset.pxPerSecond);
    return v > 0 ? v : 20;
  },
  selection: () => page.selection,
  select(ids) {
    page.selection = new Set(ids);
    announce({ selection: [...page.selection].slice(0, MAX_SELECTION) });
    scheduleRender();
  },
  playhead: () => page.playhead,
  setPlayhead(t) {
    page.playhead = Math.max(0, snap(t));
    announce({ playhead: page.playhead });
    scheduleRender();
  },
  focusComment: (id) => comments.focus(id),
  presence,
  gestures,
  changed: () => scheduleRender(),
};

// --- toolbar -------------------------------------------------------------------------

const controls = mount('editor-controls');
const undoButton = h('button', { id: 'undo', type: 'button', class: 'secondary', title: 'Undo your last edit (Ctrl+Z)' }, 'Undo');
const redoButton = h('button', { id: 'redo', type: 'button', class: 'secondary', title: 'Redo (Shift+Ctrl+Z)' }, 'Redo');
const addTrackButton = h('button', { id: 'add-track', type: 'button', class: 'secondary' }, 'Add track');
const addMarkerButton = h('button', { id: 'add-marker', type: 'button', class: 'secondary' }, 'Marker at playhead');
const splitButton = h('button', { id: 'split', type: 'button', class: 'secondary', title: 'Split the selected clips (or all under the playhead)' }, 'Split');
const zoomOut = h('button', { id: 'zoom-out', type: 'button', class: 'secondary icon', 'aria-label': 'Zoom out' }, '−');
const zoomIn = h('button', { id: 'zoom-in', type: 'button', class: 'secondary icon', 'aria-label': 'Zoom in' }, '+');
const playheadTime = h('output', { id: 'playhead-time', class: 'playhead-time', title: 'Playhead' }, formatTime(0));
const tempo = h('input', { id: 'tempo', name: 'tempo_bpm', type: 'number', min: 20, max: 400, step: 'any', class: 'tiny', 'aria-label': 'Tempo (BPM)' });
const tsBeats = h('input', { id: 'ts-beats', name: 'ts_beats', type: 'number', min: 1, max: 32, step: 1, class: 'tiny', 'aria-label': 'Beats per bar' });
const tsUnit = h('select', { id: 'ts-unit', name: 'ts_unit', 'aria-label': 'Note value' }, NOTE_VALUES.map((n) => h('option', { value: String(n) }, String(n))));
const sampleRate = h('select', { id: 'sample-rate', name: 'sample_rate', 'aria-label': 'Sample rate' }, SAMPLE_RATES.map((r) => h('option', { value: String(r) }, `${r / 1000} kHz`)));
const settingInputs = [tempo, tsBeats, tsUnit, sampleRate];

replaceChildren(
  controls,
  h('div', { class: 'control-group' }, undoButton, redoButton),
  h('div', { class: 'control-group' }, addTrackButton, addMarkerButton, splitButton),
  h('div', { class: 'control-group' }, zoomOut, zoomIn, playheadTime),
  h(
    'div',
    { class: 'control-group settings' },
    h('label', null, 'BPM', tempo),
    h('label', null, 'Time', tsBeats, h('span', { 'aria-hidden': 'true' }, '/'), tsUnit),
    h('label', null, 'Rate', sampleRate),
  ),
);

undoButton.addEventListener('click', () => undoRedo('undo'));
redoButton.addEventListener('click', () => undoRedo('redo'));
addTrackButton.addEventListener('click', () => {
  const doc = ctx.doc();
  const n = Object.keys(doc.track).length + 1;
  edit([{ op: 'create', kind: 'track', id: randomId(), props: { name: `Track ${n}`, order: appendKey(doc.track) } }]);
});
addMarkerButton.addEventListener('click', () => markers.addAtPlayhead());
splitButton.addEventListener('click', () => {
  const ops = splitAt(ctx, splitTargets(ctx), page.playhead);
  if (ops.length) edit(ops);
  else alertMessage('Nothing to split: move the playhead inside a clip.');
});
zoomIn.addEventListener('click', () => timeline.zoom(1.5));
zoomOut.addEventListener('click', () => timeline.zoom(1 / 1.5));

/**
 * @param {Record<string, any>} props
 */
function setProject(props) {
  edit([{ op: 'set', kind: 'project', id: PROJECT_ID, props }]);
}

tempo.addEventListener('change', () => {
  const v = tempo.valueAsNumber;
  if (Number.isFinite(v)) setProject({ tempo_bpm: v });
  else renderSettings();
});
for (const input of [tsBeats, tsUnit]) {
  input.addEventListener('change', () => {
    const beats = tsBeats.valueAsNumber;
    const unit = Number(tsUnit.value);
    if (Number.isInteger(beats)) setProject({ time_signature: [beats, unit] });
    else renderSettings();
  });
}
sampleRate.addEventListener('change', () => setProject({ sample_rate: Number(sampleRate.value) }));

function renderSettings() {
  const p = projectOf(ctx.doc());
  /** @param {HTMLInputElement | HTMLSelectElement} input @param {string} value */
  const set = (input, value) => {
    if (document.activeElement !== input && input.value !== value) input.value = value;
  };
  set(tempo, String(p.tempo_bpm));
  set(tsBeats, String(p.time_signature[0]));
  set(tsUnit, String(p.time_signature[1]));
  set(sampleRate, String(p.sample_rate));
  for (const el of [...settingInputs, undoButton, redoButton, addTrackButton, addMarkerButton, splitButton]) el.disabled = !canEdit();
  playheadTime.value = formatTime(page.playhead);
}

// --- keyboard ---------------------------------------------------------------------------

document.addEventListener('keydown', (e) => {
  const target = e.target;
  // Text fields keep their own undo and their own Delete key.
  if (target instanceof HTMLElement && target.closest('input, textarea, select, [contenteditable]')) return;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (mod && key === 'z') {
    e.preventDefault();
    undoRedo(e.shiftKey ? 'redo' : 'undo');
  } else if (mod && key === 'y') {
    e.preventDefault();
    undoRedo('redo');
  } else if ((e.key === 'Delete' || e.key === 'Backspace') && page.selection.size && canEdit()) {
    e.preventDefault();
    edit([...page.selection].filter((id) => id in ctx.doc().clip).map((id) => ({ op: 'delete', kind: 'clip', id })));
  } else if (e.key === 'Escape' && page.selection.size) {
    ctx.select([]);
  }
});

// --- the parts ----------------------------------------------------------------------------

const timeline = createTimeline(ctx, mount('timeline'));
const mixer = createMixer(ctx, mount('track-strips'), mount('master-strip'));
const inspector = createInspector(ctx, mount('clip-inspector'));
const markers = createMarkers(ctx, mount('marker-list'));
const comments = createComments(ctx, /** @type {HTMLFormElement} */ (mount('comment-form')), mount('comment-list'));
const stemList = createStems(ctx, mount('editor-stems'));
const versions = createVersions(
  ctx,
  { form: /** @type {HTMLFormElement} */ (mount('version-form')), list: mount('version-list'), banner: mount('version-preview') },
  (version) => {
    page.preview = version ? toDocState(version.state) : null;
    page.selection = new Set();
    scheduleRender();
  },
);
const presenceList = mount('presence-list');
const tracksEmpty = mount('tracks-empty');

function renderAll() {
  // A clip someone deleted cannot stay selected.
  const clips = ctx.doc().clip;
  const kept = [...page.selection].filter((id) => id in clips);
  if (kept.length !== page.selection.size) ctx.select(kept);
  renderStatus();
  renderSettings();
  timeline.render();
  mixer.render();
  inspector.render();
  markers.render();
  comments.render();
  stemList.render();
  versions.render();
  renderPresence(presenceList, presence);
  tracksEmpty.hidden = !sync.loaded || Object.keys(ctx.doc().track).length > 0;
}

let renderQueued = false;
/** Renders coalesce: a burst of messages in one task draws once. */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderAll();
  });
}

// --- live updates -------------------------------------------------------------------------

/** @param {unknown} err */
function handleLostAccess(err) {
  const status = err && typeof err === 'object' && 'status' in err ? err.status : 0;
  if (status === 404) projectGone('This project no longer exists, or you are no longer a member.');
  else if (status === 403) projectGone('You no longer have access to this project.');
}

async function refreshRole() {
  try {
    const { members } = await api.get(`${apiBase}/members`);
    const mine = members.find((/** @type {{ user_id: number, role: Role }} */ m) => m.user_id === initial.me.id);
    if (!mine) {
      projectGone('You are no longer a member of this project.');
      return;
    }
    page.role = mine.role;
    scheduleRender();
  } catch (err) {
    handleLostAccess(err);
  }
}

/** Stem events sent while we were away are lost: fetch the list again. */
async function refreshStems() {
  try {
    const body = await api.get(`${apiBase}/stems`);
    stems.clear();
    for (const s of body.stems ?? []) stems.set(s.id, s);
    scheduleRender();
  } catch (err) {
    handleLostAccess(err);
  }
}

/** @param {Message} event */
function onHello(event) {
  if (typeof event.role === 'string' && ROLES.includes(event.role)) page.role = /** @type {Role} */ (event.role);
  presence.connected(String(event.session ?? ''), event.user, { selection: [...page.selection], playhead: page.playhead });
  sendAll(sync.hello(event));
  // A new session is a new presence for the others: tell them where we are.
  if (page.selection.size || page.playhead) announce({ selection: [...page.selection].slice(0, MAX_SELECTION), playhead: page.playhead });
  if (page.welcomed) {
    void refreshStems();
    void versions.load();
  }
  page.welcomed = true;
}

/** @param {Message} event */
function onDocumentMessage(event) {
  const result = sync.receive(event);
  sendAll(result.send);
  for (const applied of result.applied) gestures.settle(applied.ops);
  if (event.type === 'error' && event.code !== 'stale_revision') {
    alertMessage(typeof event.message === 'string' && event.message ? event.message : `The server refused that (${event.code}).`);
  }
  if (event.type === 'ack' && event.version !== undefined) void versions.load();
  if (result.changed || event.type === 'snapshot') scheduleRender();
}

/** @param {Stem} stem */
function upsertStem(stem) {
  stems.set(stem.id, stem);
  scheduleRender();
}

/** @param {Message} event */
function onEvent(event) {
  if (page.gone) return;
  switch (event.type) {
    case 'hello':
      onHello(event);
      break;
    case 'snapshot':
    case 'sync':
    case 'edit':
    case 'ack':
    case 'error':
      onDocumentMessage(event);
      break;
    case 'gesture':
      if (gestures.receive(event, Date.now())) scheduleRender();
      break;
    case 'presence':
    case 'presence.leave':
      if (presence.receive(event)) {
        if (event.type === 'presence.leave') gestures.dropSession(event.session);
        scheduleRender();
      }
      break;
    case 'stem.added':
      if (!stems.has(event.stem.id)) upsertStem(event.stem);
      break;
    case 'stem.updated':
      upsertStem(event.stem);
      break;
    case 'stem.progress': {
      const stem = stems.get(event.stem_id);
      // A late progress event must not roll back a finished analysis.
      if (stem && stem.status === 'analysing') upsertStem({ ...stem, progress: event.progress });
      break;
    }
    case 'stem.deleted':
      stems.delete(event.stem_id);
      scheduleRender();
      break;
    case 'project.updated':
      if (event.project?.name) {
        mount('editor-project-name').textContent = event.project.name;
        document.title = `${event.project.name} · Editor · Roomtone`;
      }
      break;
    case 'project.deleted':
      projectGone('This project was deleted.');
      break;
    case 'members.changed':
      void refreshRole();
      break;
    case 'versions.changed':
      void versions.load();
      break;
    default:
      // Newer servers may send more: ignoring unknown events keeps old tabs working.
      break;
  }
}

const socket = new ProjectSocket(projectSocketUrl(window.location, projectId), {
  onEvent,
  onState(st, detail) {
    page.socketState = st;
    if (st === 'closed' && detail?.code === CLOSE_NOT_ALLOWED) {
      projectGone('You no longer have access to this project.');
      return;
    }
    renderStatus();
  },
});

// Recover from lost broadcasts and unanswered syncs; forget stale gestures.
setInterval(() => {
  if (page.socketState === 'open') sendAll(sync.tick());
  if (gestures.expire(Date.now())) scheduleRender();
}, 1000);

renderAll();
void versions.load();
socket.start();
