import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  micErrorMessage,
  jamErrorMessage,
  leftMessage,
  orderedPlayers,
  recordingMessage,
  throttleLatest,
} from '../js/jam/messages.js';

test('a refused microphone says so and how to fix it', () => {
  assert.match(micErrorMessage({ name: 'NotAllowedError' }), /refused.*Allow/);
  assert.match(micErrorMessage({ name: 'NotFoundError' }), /No microphone/);
  assert.match(micErrorMessage({ name: 'NotReadableError' }), /busy/);
  assert.match(micErrorMessage(new Error('x')), /could not be opened/);
  assert.match(micErrorMessage(null), /could not be opened/);
});

test('server errors become sentences', () => {
  assert.equal(
    jamErrorMessage('room_full', 'The jam room is full: room 7 is full (2 players).'),
    'The jam room is full: room 7 is full (2 players). Try again when someone leaves.',
  );
  assert.match(jamErrorMessage('server_full', 'The jam server is full: busy.'), /server is full/);
  assert.equal(jamErrorMessage('forbidden', 'only editors and owners can record'), 'Not allowed: only editors and owners can record.');
  assert.equal(jamErrorMessage('whatever', ''), 'Something went wrong.');
});

test('leaving on purpose is not an error', () => {
  assert.equal(leftMessage('left'), null);
  assert.equal(leftMessage(null), null);
  assert.match(leftMessage('the audio connection was lost') ?? '', /connection was lost/);
});

test('I come first, then the others in roster order', () => {
  const u = (/** @type {number} */ id) => ({ id, name: `u${id}`, colour: '#fff' });
  const players = [
    { participant: 'a', user: u(1) },
    { participant: 'b', user: u(2) },
    { participant: 'c', user: u(3) },
  ];
  assert.deepEqual(
    orderedPlayers(players, 'b').map((p) => [p.participant, p.isMe]),
    [['b', true], ['a', false], ['c', false]],
  );
  assert.deepEqual(orderedPlayers(players, null).map((p) => p.isMe), [false, false, false]);
});

test('recording lines', () => {
  assert.equal(recordingMessage(null), 'Not recording.');
  assert.equal(recordingMessage({ state: 'recording', by: { name: 'olivia' }, count_in_bars: 2 }), 'Counting in 2 bars, then recording (olivia)…');
  assert.equal(recordingMessage({ state: 'recording', count_in_bars: 0 }), 'Recording…');
  assert.equal(recordingMessage({ state: 'saved', stems: [4, 5] }), 'Saved 2 takes as new tracks of the project.');
  assert.equal(recordingMessage({ state: 'saved', stems: [] }), 'Nothing was recorded.');
  assert.equal(recordingMessage({ state: 'failed', message: 'disk full' }), 'disk full');
});

test('throttle sends at once, then at most once per interval, always the latest', () => {
  let t = 0;
  /** @type {{ fn: () => void, at: number }[]} */
  const timers = [];
  /** @type {number[]} */
  const sent = [];
  const push = throttleLatest(50, (/** @type {number} */ v) => sent.push(v), {
    now: () => t,
    setTimer: (fn, ms) => timers.push({ fn, at: t + ms }),
  });
  push(1);
  assert.deepEqual(sent, [1]);
  t = 10;
  push(2);
  t = 20;
  push(3);
  assert.deepEqual(sent, [1]);
  assert.equal(timers.length, 1);
  assert.equal(timers[0].at, 50);
  t = 50;
  timers[0].fn();
  assert.deepEqual(sent, [1, 3]);
  t = 200;
  push(4);
  assert.deepEqual(sent, [1, 3, 4]);
});
