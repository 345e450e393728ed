// The jam page: join the project's live room over WebRTC, hear a personal mix,
// set it, record. Signalling travels over the project WebSocket (the `jam.*`
// messages of docs/protocol.md); the audio goes to the server and back.

import { h, replaceChildren, showError } from './dom.js';
import { ProjectSocket, projectSocketUrl, CLOSE_NOT_ALLOWED } from './socket.js';
import { preferStereoOpus, candidateAddresses } from './jam/sdp.js';
import { FLOOR_DB, rmsDb, meterFraction, formatDb, formatPan } from './jam/levels.js';
import { RoundTrips, formatLatency, mediaRoundTripMs } from './jam/latency.js';
import {
  micErrorMessage,
  jamErrorMessage,
  leftMessage,
  orderedPlayers,
  recordingMessage,
  throttleLatest,
} from './jam/messages.js';

/**
 * @typedef {import('./jam/messages.js').Player} Player
 * @typedef {{ id: number, name: string, sample_rate: number, tempo_bpm: number, time_signature: number[], role?: string }} ProjectInfo
 * @typedef {{ project: ProjectInfo, me: { id: number, username: string }, ice_servers: RTCIceServer[], max_players: number }} InitialState
 * @typedef {'idle' | 'starting' | 'connecting' | 'connected' | 'failed'} JamStatus
 */

const ICE_GATHERING_TIMEOUT_MS = 5000;
const ANSWER_TIMEOUT_MS = 15000;
const PING_INTERVAL_MS = 2000;
const MIX_SEND_INTERVAL_MS = 50; // at most 20 changes a second while dragging

/** @param {string} id */
function mount(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`jam page: #${id} is missing from the template`);
  return el;
}

const app = mount('jam-app');
const projectId = Number(app.dataset.projectId);
const role = app.dataset.role || 'viewer';
const canRecord = role === 'owner' || role === 'editor';
/** @type {InitialState} */
const initial = JSON.parse(mount('jam-state').textContent || '{}');

const statusEl = mount('jam-status');
const latencyEl = mount('jam-latency');
const tempoEl = mount('jam-tempo');
const joinButton = /** @type {HTMLButtonElement} */ (mount('jam-join'));
const leaveButton = /** @type {HTMLButtonElement} */ (mount('jam-leave'));
const errorAnchor = mount('jam-error-anchor');
const playersEl = mount('jam-players');
const metronomeBox = /** @type {HTMLInputElement} */ (mount('jam-metronome'));
const selfMonitorBox = /** @type {HTMLInputElement} */ (mount('jam-self-monitor'));
const selfGain = /** @type {HTMLInputElement} */ (mount('jam-self-gain'));
const recordStatusEl = mount('jam-record-status');
const audioEl = /** @type {HTMLAudioElement} */ (mount('jam-audio'));
const recordButton = /** @type {HTMLButtonElement | null} */ (document.getElementById('jam-record'));
const countInSelect = /** @type {HTMLSelectElement | null} */ (document.getElementById('jam-count-in'));

const state = {
  /** @type {JamStatus} */
  status: 'idle',
  /** @type {string | null} my participant id, once the server answered */
  participant: null,
  /** @type {Player[]} */
  players: [],
  /** @type {Record<string, number>} */
  levels: {},
  /** @type {Record<string, { gain_db: number, pan: number }>} */
  gains: {},
  iceServers: initial.ice_servers ?? [],
  /** @type {{ state: string, by?: { name: string }, count_in_bars?: number, stems?: number[], message?: string } | null} */
  recording: null,
  saving: false,
  remoteLevelDb: FLOOR_DB,
  remotePeakDb: FLOOR_DB,
  socketRttMs: /** @type {number | null} */ (null),
  mediaRttMs: /** @type {number | null} */ (null),
};

/** @type {RTCPeerConnection | null} */
let pc = null;
/** @type {MediaStream | null} */
let mic = null;
/** @type {AudioContext | null} */
let audioContext = null;
/** @type {AnalyserNode | null} */
let analyser = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let answerTimer;
const roundTrips = new RoundTrips();

// Read-only view for tests and the curious: what this page hears and shows.
Object.defineProperty(window, 'roomtoneJam', {
  value: Object.freeze({
    get status() {
      return state.status;
    },
    get participant() {
      return state.participant;
    },
    get players() {
      return state.players.map((p) => ({ participant: p.participant, name: p.user.name }));
    },
    /** Whether the received mix is being measured (a remote track arrived). */
    get receiving() {
      return analyser !== null;
    },
    /** RMS of the received mix over the last ~40 ms, dBFS. */
    get remoteLevelDb() {
      return state.remoteLevelDb;
    },
    /** Highest remoteLevelDb since joining. */
    get remotePeakDb() {
      return state.remotePeakDb;
    },
    get levels() {
      return { ...state.levels };
    },
    get latency() {
      return { socketMs: state.socketRttMs, mediaMs: state.mediaRttMs };
    },
  }),
});

// --- the socket ---------------------------------------------------------------------

const socket = new ProjectSocket(projectSocketUrl(window.location, projectId), {
  onEvent: onEvent,
  onState: (s, detail) => {
    if (s === 'closed' && detail?.code === CLOSE_NOT_ALLOWED) {
      fail('You are not a member of this project any more.');
      joinButton.disabled = true;
    } else if (s === 'reconnecting' && state.status !== 'idle') {
      // The server forgets us with the socket, and the audio goes with it.
      hangUp();
      fail('The connection to the server was lost. Join again once it is back.');
    }
  },
});

/** @param {Record<string, unknown>} message */
function send(message) {
  const ws = socket.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(message));
  return true;
}

/** @param {{ type: string, [key: string]: any }} event */
function onEvent(event) {
  switch (event.type) {
    case 'hello':
      send({ type: 'jam.state' });
      break;
    case 'jam.state':
      if (Array.isArray(event.ice_servers)) state.iceServers = event.ice_servers;
      state.players = event.participants ?? [];
      state.recording = event.recording ? { state: 'recording', ...event.recording } : state.recording;
      state.saving = Boolean(event.saving);
      if (event.tempo_bpm) showTempo(event.tempo_bpm, event.beats_per_bar);
      renderPlayers();
      renderRecording();
      break;
    case 'jam.answer':
      onAnswer(event.sdp, event.participant);
      break;
    case 'jam.roster':
      state.players = event.participants ?? [];
      state.saving = Boolean(event.saving);
      if (!event.recording && state.recording?.state === 'recording') state.recording = null;
      if (event.tempo_bpm) showTempo(event.tempo_bpm, event.beats_per_bar);
      renderPlayers();
      renderRecording();
      break;
    case 'jam.meters':
      state.levels = event.levels ?? {};
      drawMeters();
      break;
    case 'jam.mix':
      state.gains = event.gains ?? {};
      break;
    case 'jam.recording':
      state.recording = { ...event, state: String(event.state) };
      state.saving = event.state === 'saving';
      renderRecording();
      break;
    case 'jam.left':
      if (event.participant === state.participant) {
        hangUp();
        const message = leftMessage(event.reason);
        if (message) fail(message);
      }
      break;
    case 'jam.pong':
      roundTrips.add(performance.now() - Number(event.t));
      state.socketRttMs = roundTrips.median();
      showLatency();
      break;
    case 'error':
      if (typeof event.request === 'string' && event.request.startsWith('jam.')) {
        onJamError({ code: String(event.code), message: String(event.message), request: event.request });
      }
      break;
    default:
      break;
  }
}

/** @param {{ code: string, message: string, request: string }} event */
function onJamError(event) {
  if (event.request === 'jam.join') {
    hangUp();
  }
  fail(jamErrorMessage(event.code, event.message));
}

// --- joining ------------------------------------------------------------------------

joinButton.addEventListener('click', () => {
  join().catch((err) => {
    hangUp();
    fail(err instanceof Error ? err.message : String(err));
  });
});
leaveButton.addEventListener('click', () => {
  send({ type: 'jam.leave' });
  hangUp();
});

async function join() {
  showError(errorAnchor, null);
  setStatus('starting');
  // A user gesture: the audio context may start now.
  audioContext = audioContext ?? new AudioContext({ latencyHint: 'interactive' });
  await audioContext.resume().catch(() => {});
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      // A music room: the browser's speech processing would eat the music.
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      video: false,
    });
  } catch (err) {
    hangUp();
    fail(micErrorMessage(err));
    return;
  }
  const peer = new RTCPeerConnection({ iceServers: state.iceServers });
  pc = peer;
  const [track] = mic.getAudioTracks();
  peer.addTransceiver(track, { direction: 'sendrecv', streams: [mic] });
  peer.addEventListener('track', (e) => onRemoteTrack(e));
  peer.addEventListener('connectionstatechange', () => onConnectionState(peer));
  await peer.setLocalDescription(await peer.createOffer());
  await iceGatheringComplete(peer);
  if (pc !== peer) return; // left meanwhile
  const offer = preferStereoOpus(peer.localDescription?.sdp ?? '');
  if (candidateAddresses(offer).length === 0) {
    throw new Error('Your browser offered no network address for the audio connection.');
  }
  setStatus('connecting');
  if (!send({ type: 'jam.join', offer })) throw new Error('Not connected to the server; try again in a moment.');
  answerTimer = setTimeout(() => {
    if (state.status === 'connecting' && !state.participant) {
      hangUp();
      fail('The jam server did not answer. Try again in a moment.');
    }
  }, ANSWER_TIMEOUT_MS);
}

/** @param {RTCPeerConnection} peer */
function iceGatheringComplete(peer) {
  // No trickle ICE: the offer goes out once, with every candidate in it.
  if (peer.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (peer.iceGatheringState !== 'complete') return;
      peer.removeEventListener('icegatheringstatechange', done);
      resolve(undefined);
    };
    peer.addEventListener('icegatheringstatechange', done);
    // Some networks never finish gathering (an unreachable TURN server):
    // go with what we have.
    setTimeout(() => resolve(undefined), ICE_GATHERING_TIMEOUT_MS);
  });
}

/**
 * @param {string} sdp
 * @param {string} participant
 */
async function onAnswer(sdp, participant) {
  if (!pc) return;
  clearTimeout(answerTimer);
  state.participant = participant;
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp });
  } catch (err) {
    send({ type: 'jam.leave' });
    hangUp();
    fail(`The server's answer could not be used: ${err instanceof Error ? err.message : err}`);
    return;
  }
  renderPlayers();
}

/** @param {RTCPeerConnection} peer */
function onConnectionState(peer) {
  if (pc !== peer) return;
  const s = peer.connectionState;
  if (s === 'connected') {
    setStatus('connected');
  } else if (s === 'failed') {
    send({ type: 'jam.leave' });
    hangUp();
    setStatus('failed');
    fail('The audio connection to the jam server failed. If you are behind a strict firewall, the server needs a TURN server (ROOMTONE_ICE_SERVERS).');
  } else if (s === 'disconnected') {
    statusEl.textContent = 'connection interrupted…';
  }
}

/** @param {RTCTrackEvent} e */
function onRemoteTrack(e) {
  const stream = e.streams[0] ?? new MediaStream([e.track]);
  // Keep the receive buffer as short as the network allows.
  const receiver = /** @type {any} */ (e.receiver);
  if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0;
  audioEl.srcObject = stream;
  audioEl.play().catch(() => {});
  if (audioContext) {
    // Measure what arrives (Chrome only feeds Web Audio from a remote stream
    // that also plays in a media element, as it does above).
    const source = audioContext.createMediaStreamSource(stream);
    analyser = audioContext.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
  }
}

function hangUp() {
  clearTimeout(answerTimer);
  if (pc) {
    pc.close();
    pc = null;
  }
  for (const t of mic?.getTracks() ?? []) t.stop();
  mic = null;
  analyser = null;
  audioEl.srcObject = null;
  state.participant = null;
  state.levels = {};
  state.mediaRttMs = null;
  setStatus('idle');
  renderPlayers();
}

// --- showing state --------------------------------------------------------------------

/** @param {JamStatus} status */
function setStatus(status) {
  state.status = status;
  const text = {
    idle: 'not joined',
    starting: 'opening the microphone…',
    connecting: 'connecting…',
    connected: 'connected',
    failed: 'connection failed',
  }[status];
  statusEl.textContent = text;
  statusEl.dataset.state = status;
  const inRoom = status === 'connecting' || status === 'connected' || status === 'starting';
  joinButton.hidden = inRoom;
  leaveButton.hidden = !inRoom;
  metronomeBox.disabled = status !== 'connected';
  selfMonitorBox.disabled = status !== 'connected';
  selfGain.disabled = status !== 'connected';
  if (status !== 'connected') {
    metronomeBox.checked = false;
    selfMonitorBox.checked = false;
  }
  renderRecording();
}

/** @param {string} message */
function fail(message) {
  showError(errorAnchor, message);
}

/**
 * @param {number} bpm
 * @param {number} [beats]
 */
function showTempo(bpm, beats) {
  tempoEl.textContent = `${Math.round(bpm * 100) / 100} BPM${beats ? `, ${beats} beats a bar` : ''}`;
}

function showLatency() {
  latencyEl.textContent = formatLatency({ socketMs: state.socketRttMs, mediaMs: state.mediaRttMs });
}

/** @type {Map<string, HTMLMeterElement>} */
const meters = new Map();

function renderPlayers() {
  meters.clear();
  const players = orderedPlayers(state.players, state.participant);
  if (players.length === 0) {
    replaceChildren(playersEl, h('li', { class: 'muted jam-empty' }, 'Nobody is playing yet.'));
    return;
  }
  replaceChildren(
    playersEl,
    players.map((p) => {
      const meter = h('meter', { class: 'jam-level', min: 0, max: 1, low: 0.85, high: 0.95, optimum: 0.5, value: 0, 'aria-label': `${p.user.name} level` });
      meters.set(p.participant, meter);
      const controls = p.isMe || !state.participant ? null : mixControls(p);
      return h(
        'li',
        { class: `jam-player${p.isMe ? ' me' : ''}`, dataset: { participant: p.participant } },
        h('span', { class: 'jam-swatch', style: `background:${p.user.colour}`, 'aria-hidden': 'true' }),
        h('span', { class: 'jam-name' }, p.user.name, p.isMe ? h('span', { class: 'muted' }, ' (you)') : null),
        meter,
        h('span', { class: 'jam-db muted' }, ''),
        controls,
      );
    }),
  );
  drawMeters();
}

/** @param {Player} p */
function mixControls(p) {
  const current = state.gains[p.participant] ?? { gain_db: 0, pan: 0 };
  const gain = h('input', { type: 'range', class: 'jam-gain', min: -40, max: 12, step: 0.5, value: String(current.gain_db), 'aria-label': `${p.user.name} level in my mix` });
  const pan = h('input', { type: 'range', class: 'jam-pan', min: -1, max: 1, step: 0.05, value: String(current.pan), 'aria-label': `${p.user.name} pan in my mix` });
  const readout = h('span', { class: 'jam-mix-readout muted' }, `${formatDb(current.gain_db)} · ${formatPan(current.pan)}`);
  const push = throttleLatest(MIX_SEND_INTERVAL_MS, (/** @type {{ gain_db: number, pan: number }} */ v) => {
    send({ type: 'jam.mix', source: p.participant, gain_db: v.gain_db, pan: v.pan });
  });
  const changed = () => {
    const v = { gain_db: Number(gain.value), pan: Number(pan.value) };
    state.gains[p.participant] = v;
    readout.textContent = `${formatDb(v.gain_db)} · ${formatPan(v.pan)}`;
    push(v);
  };
  gain.addEventListener('input', changed);
  pan.addEventListener('input', changed);
  return h('span', { class: 'jam-mix' }, gain, pan, readout);
}

function drawMeters() {
  for (const [participant, meter] of meters) {
    const db = state.levels[participant] ?? FLOOR_DB;
    meter.value = meterFraction(db);
    const label = meter.nextElementSibling;
    if (label) label.textContent = formatDb(db, -90);
  }
}

function renderRecording() {
  recordStatusEl.textContent = state.saving ? 'Saving the takes…' : recordingMessage(state.recording);
  const saved = state.recording?.state === 'saved' && (state.recording.stems?.length ?? 0) > 0;
  if (saved) {
    recordStatusEl.append(' ', h('a', { href: `/projects/${projectId}/editor/` }, 'Open the editor'));
  }
  if (!recordButton) return;
  const recording = state.recording?.state === 'recording';
  recordButton.textContent = recording ? 'Stop recording' : 'Record';
  recordButton.classList.toggle('danger', recording);
  recordButton.disabled = state.status !== 'connected' || state.saving;
  if (countInSelect) countInSelect.disabled = recording || state.status !== 'connected';
}

recordButton?.addEventListener('click', () => {
  if (!canRecord) return;
  if (state.recording?.state === 'recording') {
    send({ type: 'jam.record.stop' });
  } else {
    send({ type: 'jam.record.start', count_in_bars: Number(countInSelect?.value ?? 0) });
  }
});

metronomeBox.addEventListener('change', () => {
  send({ type: 'jam.mix', metronome: metronomeBox.checked });
});
const pushSelf = throttleLatest(MIX_SEND_INTERVAL_MS, (/** @type {number} */ gainDb) => {
  send({ type: 'jam.mix', self_monitor: selfMonitorBox.checked, gain_db: gainDb });
});
selfMonitorBox.addEventListener('change', () => pushSelf(Number(selfGain.value)));
selfGain.addEventListener('input', () => {
  if (selfMonitorBox.checked) pushSelf(Number(selfGain.value));
});

// --- measuring ------------------------------------------------------------------------

/** @type {Float32Array<ArrayBuffer> | null} */
let samples = null;
setInterval(() => {
  if (!analyser) return;
  if (!samples || samples.length !== analyser.fftSize) samples = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(samples);
  state.remoteLevelDb = rmsDb(samples);
  state.remotePeakDb = Math.max(state.remotePeakDb, state.remoteLevelDb);
}, 100);

setInterval(async () => {
  send({ type: 'jam.ping', t: performance.now() });
  if (pc && state.status === 'connected') {
    try {
      const stats = await pc.getStats();
      state.mediaRttMs = mediaRoundTripMs(stats.values());
    } catch {
      state.mediaRttMs = null;
    }
  }
  showLatency();
}, PING_INTERVAL_MS);

if (initial.project?.tempo_bpm) showTempo(initial.project.tempo_bpm, initial.project.time_signature?.[0]);
if (!navigator.mediaDevices?.getUserMedia || typeof RTCPeerConnection === 'undefined') {
  joinButton.disabled = true;
  fail('This browser cannot join a jam: it lacks microphone access or WebRTC (or the page is not served over HTTPS).');
}
setStatus('idle');
showLatency();
renderPlayers();
socket.start();
window.addEventListener('pagehide', () => {
  if (state.participant) send({ type: 'jam.leave' });
});
