import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ACK_GRACE_MS, EditorSync, SYNC_TIMEOUT_MS, applyOp, emptyState, projectOf, toDocState } from '../js/editor/state.js';

const ME = { id: 3, name: 'olivia' };
const OTHER = { id: 4, name: 'sam' };

function baseState() {
  return {
    project: { project: { sample_rate: 48000, tempo_bpm: 120, time_signature: [4, 4], master_gain_db: 0 } },
    track: { t1: { name: 'Drums', order: 'V', gain_db: 0, pan: 0, mute: false, solo: false } },
    clip: { c1: { track: 't1', source: 'stem:42', start: 0, offset: 0, duration: null, gain_db: 0, fade_in: 0, fade_out: 0 } },
    effect: {},
    marker: {},
    comment: {},
  };
}

/** A client that has said hello and loaded the snapshot at `revision`. */
function loaded(revision = 10, state = baseState()) {
  const s = new EditorSync(ME);
  assert.deepEqual(s.hello({ type: 'hello', session: 'sess1', revision }, 0), [{ type: 'sync' }]);
  s.receive({ type: 'snapshot', revision, state }, 0);
  return s;
}

function edit(revision, ops, extra = {}) {
  return { type: 'edit', revision, kind: 'edit', client_op_id: `x-${revision}`, user: OTHER, ops, ...extra };
}

const setGain = (id, gain_db) => ({ op: 'set', kind: 'track', id, props: { gain_db } });

test('the first hello asks for a snapshot, which becomes the state at its revision', () => {
  const s = loaded(12);
  assert.equal(s.loaded, true);
  assert.equal(s.revision, 12);
  assert.equal(s.view().track.t1.name, 'Drums');
});

test('an edit at R + 1 is applied and R advances; a duplicate is ignored', () => {
  const s = loaded(10);
  const r = s.receive(edit(11, [setGain('t1', -6)]));
  assert.equal(r.changed, true);
  assert.equal(s.revision, 11);
  assert.equal(s.view().track.t1.gain_db, -6);
  const again = s.receive(edit(11, [setGain('t1', -12)]));
  assert.equal(again.changed, false);
  assert.equal(s.view().track.t1.gain_db, -6);
  assert.equal(s.receive(edit(9, [setGain('t1', 3)])).changed, false);
  assert.equal(s.view().track.t1.gain_db, -6);
});

test('a gap keeps the early edit, asks once for what is missing, then applies all in order', () => {
  const s = loaded(10);
  const r1 = s.receive(edit(12, [setGain('t1', -12)]), 100);
  assert.deepEqual(r1.send, [{ type: 'sync', since: 10 }]);
  assert.equal(s.revision, 10);
  assert.equal(s.view().track.t1.gain_db, 0);
  // A second early edit does not ask again while the first question is open.
  const r2 = s.receive(edit(13, [setGain('t1', -13)]), 110);
  assert.deepEqual(r2.send, []);

  const answer = s.receive({ type: 'sync', since: 10, revision: 12, edits: [edit(11, [setGain('t1', -11)]), edit(12, [setGain('t1', -12)])] }, 120);
  assert.equal(s.revision, 13, 'the kept edit 13 follows the sync answer');
  assert.equal(s.view().track.t1.gain_db, -13);
  assert.deepEqual(answer.applied.map((e) => e.revision), [11, 12, 13]);
  assert.deepEqual(answer.send, []);
});

test('out-of-order delivery without a sync answer resolves when the missing edit arrives', () => {
  const s = loaded(10);
  s.receive(edit(12, [setGain('t1', -12)]));
  s.receive(edit(11, [setGain('t1', -11)]));
  assert.equal(s.revision, 12);
  assert.equal(s.view().track.t1.gain_db, -12);
  assert.equal(s.buffer.size, 0);
});

test('a snapshot answer replaces the state and kept edits above it still apply', () => {
  const s = loaded(10);
  s.receive(edit(600, [setGain('t1', -6)]));
  const fresh = baseState();
  fresh.track.t1.name = 'Kit';
  s.receive({ type: 'snapshot', revision: 599, state: fresh });
  assert.equal(s.revision, 600);
  assert.equal(s.view().track.t1.name, 'Kit');
  assert.equal(s.view().track.t1.gain_db, -6);
});

test('edits that arrive before the first snapshot wait for it', () => {
  const s = new EditorSync(ME);
  s.hello({ type: 'hello', session: 's' });
  s.receive(edit(5, [setGain('t1', -5)]));
  s.receive(edit(6, [setGain('t1', -6)]));
  s.receive({ type: 'snapshot', revision: 5, state: baseState() });
  assert.equal(s.revision, 6);
  assert.equal(s.view().track.t1.gain_db, -6);
});

test('our edit shows at once, with an id from the session, and the server copy replaces it', () => {
  const s = loaded(10);
  const [msg] = s.edit([setGain('t1', -3)]);
  assert.equal(msg.type, 'edit');
  assert.equal(msg.client_op_id, 'sess1-1');
  assert.equal(msg.base_revision, 10);
  assert.equal(s.view().track.t1.gain_db, -3);
  assert.equal(s.confirmed.track.t1.gain_db, 0, 'the confirmed state waits for the server');

  s.receive({ type: 'ack', client_op_id: 'sess1-1', revision: 11, duplicate: false });
  assert.equal(s.pending.length, 1, 'still shown from the queue until the broadcast');
  s.receive(edit(11, [setGain('t1', -3)], { client_op_id: 'sess1-1', user: { id: ME.id, name: ME.name } }));
  assert.equal(s.pending.length, 0);
  assert.equal(s.view().track.t1.gain_db, -3);
  assert.equal(s.revision, 11);
});

test('another user with the same client_op_id does not confirm our edit', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -3)]);
  s.receive(edit(11, [setGain('t1', 1)], { client_op_id: 'sess1-1', user: OTHER }));
  assert.equal(s.pending.length, 1);
  assert.equal(s.view().track.t1.gain_db, -3);
});

test("others' edits rebase under ours: ours stay on top until confirmed, other properties merge", () => {
  const s = loaded(10);
  s.edit([setGain('t1', -3)]);
  s.receive(edit(11, [{ op: 'set', kind: 'track', id: 't1', props: { gain_db: 5, name: 'Kit' } }]));
  assert.equal(s.view().track.t1.gain_db, -3, 'our pending value wins locally, as it will on the server');
  assert.equal(s.view().track.t1.name, 'Kit');
  // The server applies ours after theirs: same result once confirmed.
  s.receive(edit(12, [setGain('t1', -3)], { client_op_id: 'sess1-1', user: { id: ME.id, name: ME.name } }));
  assert.equal(s.view().track.t1.gain_db, -3);
  assert.equal(s.view().track.t1.name, 'Kit');
});

test('a refused edit is rolled back and reported', () => {
  const s = loaded(10);
  s.edit([{ op: 'set', kind: 'track', id: 't1', props: { pan: 2 } }]);
  assert.equal(s.view().track.t1.pan, 2);
  const r = s.receive({ type: 'error', code: 'bad_op', client_op_id: 'sess1-1', message: 'ops[0].props.pan: must be at most 1' });
  assert.equal(r.changed, true);
  assert.equal(r.dropped?.client_op_id, 'sess1-1');
  assert.equal(s.view().track.t1.pan, 0);
  assert.equal(s.pending.length, 0);
});

test('after a reconnect: sync since R, then every unacknowledged edit again with the same ids', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -1)]);
  s.edit([setGain('t1', -2)]);
  s.edit([setGain('t1', -3)]);
  s.receive({ type: 'ack', client_op_id: 'sess1-1', revision: 11 });
  const out = s.hello({ type: 'hello', session: 'sess2', revision: 11 });
  assert.deepEqual(out[0], { type: 'sync', since: 10 });
  assert.deepEqual(
    out.slice(1).map((m) => [m.type, m.client_op_id, m.base_revision]),
    [
      ['edit', 'sess1-2', 10],
      ['edit', 'sess1-3', 10],
    ],
  );
  // New edits keep the first session's prefix, so ids never collide.
  assert.equal(s.edit([setGain('t1', -4)])[0].client_op_id, 'sess1-4');
});

test('a resync that contains our resent edit confirms it; the duplicate ack changes nothing', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -1)]);
  s.hello({ type: 'hello', session: 'sess2' });
  s.receive({
    type: 'sync',
    since: 10,
    revision: 11,
    edits: [edit(11, [setGain('t1', -1)], { client_op_id: 'sess1-1', user: { id: ME.id, name: ME.name } })],
  });
  assert.equal(s.pending.length, 0);
  const r = s.receive({ type: 'ack', client_op_id: 'sess1-1', revision: 11, duplicate: true });
  assert.equal(r.changed, false);
  assert.deepEqual(r.send, []);
  assert.equal(s.view().track.t1.gain_db, -1);
});

test('a duplicate ack at or below R drops an edit a snapshot already contains', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -1)]);
  const state = baseState();
  state.track.t1.gain_db = -1;
  s.hello({ type: 'hello', session: 'sess2' });
  s.receive({ type: 'snapshot', revision: 700, state });
  assert.equal(s.pending.length, 1, 'unacknowledged: still pending');
  s.receive({ type: 'ack', client_op_id: 'sess1-1', revision: 650, duplicate: true });
  assert.equal(s.pending.length, 0);
});

test('an ack above R + 1 is a gap', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -1)]);
  const r = s.receive({ type: 'ack', client_op_id: 'sess1-1', revision: 13 }, 0);
  assert.deepEqual(r.send, [{ type: 'sync', since: 10 }]);
});

test('an ack at R + 1 waits for its broadcast, and resyncs if it never comes', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -1)]);
  const r = s.receive({ type: 'ack', client_op_id: 'sess1-1', revision: 11 }, 1000);
  assert.deepEqual(r.send, []);
  assert.deepEqual(s.tick(1000 + ACK_GRACE_MS - 1), []);
  assert.deepEqual(s.tick(1000 + ACK_GRACE_MS + 1), [{ type: 'sync', since: 10 }]);
});

test('a stale edit is kept, and resent with the new base after the resync', () => {
  const s = loaded(10);
  s.edit([setGain('t1', -1)]);
  const r = s.receive({ type: 'error', code: 'stale_revision', client_op_id: 'sess1-1', message: 'resync' }, 0);
  assert.deepEqual(r.send, [{ type: 'sync', since: 10 }]);
  assert.equal(r.dropped, null);
  assert.equal(s.view().track.t1.gain_db, -1, 'still shown');
  const after = s.receive({ type: 'snapshot', revision: 900, state: baseState() }, 10);
  assert.equal(after.send.length, 1);
  assert.equal(after.send[0].client_op_id, 'sess1-1');
  assert.equal(after.send[0].base_revision, 900);
});

test('an unanswered sync may be asked again after the timeout', () => {
  const s = loaded(10);
  s.receive(edit(12, [setGain('t1', -12)]), 0);
  assert.deepEqual(s.tick(SYNC_TIMEOUT_MS - 1), []);
  assert.deepEqual(s.tick(SYNC_TIMEOUT_MS + 1), [{ type: 'sync', since: 10 }]);
});

test('a sync answer that closes nothing does not ask again at once', () => {
  const s = loaded(10);
  s.receive(edit(12, [setGain('t1', -12)]), 0);
  const r = s.receive({ type: 'sync', since: 10, revision: 12, edits: [] }, 5);
  assert.deepEqual(r.send, []);
  assert.deepEqual(s.tick(1000), [{ type: 'sync', since: 10 }], 'the next tick does');
});

test('edits are refused before the document has loaded', () => {
  const s = new EditorSync(ME);
  assert.deepEqual(s.edit([setGain('t1', 1)]), []);
  s.hello({ type: 'hello', session: 's' });
  assert.deepEqual(s.edit([setGain('t1', 1)]), []);
});

test('more than 100 ops go as several edits', () => {
  const s = loaded(10);
  const ops = Array.from({ length: 150 }, (_, i) => ({ op: 'create', kind: 'marker', id: `m${i}`, props: { time: i } }));
  const msgs = s.edit(ops);
  assert.deepEqual(msgs.map((m) => m.ops.length), [100, 50]);
  assert.equal(Object.keys(s.view().marker).length, 150);
});

test('our pending comments show as ours, and replies to replies join the thread', () => {
  const s = loaded(10);
  s.edit([{ op: 'create', kind: 'comment', id: 'k1', props: { time: 1, text: 'hi', parent: null, track: null } }]);
  s.edit([{ op: 'create', kind: 'comment', id: 'k2', props: { time: 1, text: 'reply', parent: 'k1', track: null } }]);
  s.edit([{ op: 'create', kind: 'comment', id: 'k3', props: { time: 1, text: 'deeper', parent: 'k2', track: null } }]);
  const view = s.view();
  assert.equal(view.comment.k1.author, ME.id);
  assert.equal(view.comment.k1.author_name, 'olivia');
  assert.equal(view.comment.k1.resolved, false);
  assert.equal(view.comment.k3.parent, 'k1');
});

test('deleting a track takes its clips and effects; deleting a comment its replies', () => {
  const state = toDocState(baseState());
  applyOp(state, { op: 'create', kind: 'effect', id: 'e1', props: { track: 't1', order: 'V', type: 'gain', params: { gain_db: 0 } } });
  applyOp(state, { op: 'create', kind: 'effect', id: 'e2', props: { track: null, order: 'V', type: 'gain', params: {} } });
  applyOp(state, { op: 'create', kind: 'comment', id: 'k1', props: { time: 0, text: 'a' } });
  applyOp(state, { op: 'create', kind: 'comment', id: 'k2', props: { time: 0, text: 'b', parent: 'k1' } });
  applyOp(state, { op: 'delete', kind: 'track', id: 't1' });
  assert.deepEqual(Object.keys(state.clip), []);
  assert.deepEqual(Object.keys(state.effect), ['e2']);
  applyOp(state, { op: 'delete', kind: 'comment', id: 'k1' });
  assert.deepEqual(Object.keys(state.comment), []);
});

test('create fills defaults; set merges effect params; ops on missing objects are skipped', () => {
  const state = emptyState();
  applyOp(state, { op: 'create', kind: 'track', id: 't', props: { name: 'A', order: 'V' } });
  assert.deepEqual(state.track.t, { name: 'A', order: 'V', gain_db: 0, pan: 0, mute: false, solo: false });
  applyOp(state, { op: 'create', kind: 'effect', id: 'e', props: { track: 't', order: 'V', type: 'peak', params: { cutoff_hz: 1000, q: 1 } } });
  applyOp(state, { op: 'set', kind: 'effect', id: 'e', props: { params: { q: 2 } } });
  assert.deepEqual(state.effect.e.params, { cutoff_hz: 1000, q: 2 });
  assert.equal(applyOp(state, { op: 'set', kind: 'clip', id: 'gone', props: { start: 1 } }), false);
  assert.equal(applyOp(state, { op: 'create', kind: 'project', id: 'project', props: {} }), false);
});

test('project settings are read whether nested under their id or written directly', () => {
  const nested = toDocState({ project: { project: { tempo_bpm: 90, sample_rate: 44100, time_signature: [3, 4], master_gain_db: -1 } } });
  const flat = toDocState({ project: { tempo_bpm: 90, sample_rate: 44100, time_signature: [3, 4], master_gain_db: -1 } });
  assert.deepEqual(nested, flat);
  assert.equal(projectOf(flat).tempo_bpm, 90);
  applyOp(flat, { op: 'set', kind: 'project', id: 'project', props: { tempo_bpm: 100 } });
  assert.equal(projectOf(flat).tempo_bpm, 100);
  assert.equal(projectOf(emptyState()).tempo_bpm, 120, 'defaults before the document arrives');
});

test('a renderer-shaped document converts to flat state with tracks in their order', () => {
  const state = toDocState({
    format: 'roomtone.project',
    version: 1,
    sample_rate: 48000,
    tempo_bpm: 100,
    time_signature: [4, 4],
    tracks: [
      { id: 'b', name: 'B', gain_db: -1, pan: 0, mute: false, solo: false, effects: [{ type: 'highpass', cutoff_hz: 90 }], clips: [{ id: 'c9', source: 'stem:1', start: 2 }] },
      { id: 'a', name: 'A', effects: [], clips: [] },
    ],
    master: { gain_db: -2, effects: [{ type: 'limiter', threshold_db: -1 }] },
  });
  assert.ok(state.track.b.order < state.track.a.order);
  assert.equal(state.clip.c9.track, 'b');
  assert.equal(state.clip.c9.offset, 0);
  assert.equal(projectOf(state).master_gain_db, -2);
  const effects = Object.values(state.effect);
  assert.deepEqual(effects.map((e) => [e.track, e.type, e.params]).sort(), [
    ['b', 'highpass', { cutoff_hz: 90 }],
    [null, 'limiter', { threshold_db: -1 }],
  ].sort());
});

test('the view does not leak our pending edits into the confirmed state', () => {
  const s = loaded(10);
  s.edit([{ op: 'delete', kind: 'clip', id: 'c1' }]);
  assert.equal(s.view().clip.c1, undefined);
  assert.ok(s.confirmed.clip.c1);
});
