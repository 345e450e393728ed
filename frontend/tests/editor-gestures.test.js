import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GESTURE_MAX_AGE_MS, GestureOverlay, throttle } from '../js/editor/gestures.js';
import { emptyState } from '../js/editor/state.js';

function doc() {
  const s = emptyState();
  s.track.t1 = { name: 'Drums', order: 'V', gain_db: 0, pan: 0, mute: false, solo: false };
  s.effect.e1 = { track: 't1', order: 'V', type: 'peak', params: { cutoff_hz: 1000, q: 1 } };
  return s;
}

const gesture = (props, session = 'A') => ({ type: 'gesture', session, user: { id: 4, name: 'sam' }, kind: 'track', id: 't1', props });

test("others' gestures show on top of the state without changing it", () => {
  const g = new GestureOverlay();
  const state = doc();
  assert.equal(g.receive(gesture({ gain_db: -6.5 }), 0), true);
  const shown = g.apply(state);
  assert.equal(shown.track.t1.gain_db, -6.5);
  assert.equal(state.track.t1.gain_db, 0);
  assert.equal(shown.effect, state.effect, 'untouched kinds are shared, not copied');
  assert.equal(g.sessionOf('track', 't1'), 'A');
});

test('effect param gestures merge into the params', () => {
  const g = new GestureOverlay();
  g.receive({ type: 'gesture', session: 'A', kind: 'effect', id: 'e1', props: { params: { q: 3 } } }, 0);
  assert.deepEqual(g.apply(doc()).effect.e1.params, { cutoff_hz: 1000, q: 3 });
});

test('the committing edit settles the gesture', () => {
  const g = new GestureOverlay();
  g.receive(gesture({ gain_db: -6.5 }), 0);
  assert.equal(g.settle([{ op: 'set', kind: 'track', id: 't1', props: { gain_db: -6.5 } }]), true);
  assert.equal(g.live.size, 0);
});

test('an edit of another property leaves the gesture live', () => {
  const g = new GestureOverlay();
  g.receive(gesture({ gain_db: -6.5 }), 0);
  g.settle([{ op: 'set', kind: 'track', id: 't1', props: { name: 'Kit' } }]);
  assert.equal(g.apply(doc()).track.t1.gain_db, -6.5);
});

test('end cancels only the sender’s own gesture', () => {
  const g = new GestureOverlay();
  g.receive(gesture({ gain_db: -6.5 }, 'A'), 0);
  assert.equal(g.receive({ type: 'gesture', session: 'B', kind: 'track', id: 't1', end: true }, 1), false);
  assert.equal(g.receive({ type: 'gesture', session: 'A', kind: 'track', id: 't1', end: true }, 2), true);
  assert.equal(g.apply(doc()).track.t1.gain_db, 0);
});

test('gestures of a session that left, or gone quiet, are forgotten', () => {
  const g = new GestureOverlay();
  g.receive(gesture({ gain_db: -1 }, 'A'), 0);
  assert.equal(g.dropSession('A'), true);
  assert.equal(g.live.size, 0);
  g.receive(gesture({ gain_db: -1 }, 'B'), 0);
  assert.equal(g.expire(GESTURE_MAX_AGE_MS - 1), false);
  assert.equal(g.expire(GESTURE_MAX_AGE_MS + 1), true);
  assert.equal(g.live.size, 0);
});

test('a gesture on an object that does not exist shows nothing', () => {
  const g = new GestureOverlay();
  g.receive({ type: 'gesture', session: 'A', kind: 'clip', id: 'nope', props: { start: 3 } }, 0);
  const state = doc();
  assert.deepEqual(g.apply(state), state);
});

function fakeClock() {
  let now = 0;
  /** @type {{ at: number, f: () => void }[]} */
  let timers = [];
  return {
    now: () => now,
    setTimeout: (f, ms) => {
      const t = { at: now + ms, f };
      timers.push(t);
      return t;
    },
    clearTimeout: (t) => {
      timers = timers.filter((x) => x !== t);
    },
    advance(ms) {
      now += ms;
      for (const t of timers.filter((x) => x.at <= now)) {
        timers = timers.filter((x) => x !== t);
        t.f();
      }
    },
  };
}

test('throttle: first call at once, then at most one per interval, newest value last', () => {
  const clock = fakeClock();
  const sent = [];
  const send = throttle((v) => sent.push([clock.now(), v]), 60, clock);
  send(1);
  send(2);
  send(3);
  assert.deepEqual(sent, [[0, 1]]);
  clock.advance(60);
  assert.deepEqual(sent, [
    [0, 1],
    [60, 3],
  ]);
  // 1 s of calls every 10 ms: at most 1000/60 + 1 sends, far under 20 per second... plus the first.
  for (let i = 0; i < 100; i++) {
    send(i);
    clock.advance(10);
  }
  clock.advance(100);
  const perSecond = sent.filter(([t]) => t >= 60 && t < 1060).length;
  assert.ok(perSecond <= 18, `sent ${perSecond} in one second`);
  assert.equal(sent.at(-1)[1], 99, 'the last value is not lost');
});

test('throttle: cancel drops the waiting call', () => {
  const clock = fakeClock();
  const sent = [];
  const send = throttle((v) => sent.push(v), 60, clock);
  send('a');
  send('b');
  send.cancel();
  clock.advance(100);
  assert.deepEqual(sent, ['a']);
});
