import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  MIN_CLIP_S,
  appendKey,
  barTicks,
  clipLength,
  formatTime,
  movedStart,
  reorderKey,
  slicePeaks,
  snap,
  sortedByOrder,
  splitOps,
  stemIdOf,
  trimLeft,
  trimRight,
} from '../js/editor/clipmath.js';
import { addStemOps } from '../js/editor/stems.js';
import { threads } from '../js/editor/comments.js';
import { describeChanges, readVersionList } from '../js/editor/versions.js';
import { PresenceBook } from '../js/editor/presence.js';

const clip = (props = {}) => ({ track: 't1', source: 'stem:7', start: 4, offset: 1, duration: null, gain_db: 0, fade_in: 0, fade_out: 0, ...props });

test('snap lands on the 10 ms grid without float noise', () => {
  assert.equal(snap(4.5), 4.5);
  assert.equal(snap(2.0049), 2);
  assert.equal(snap(0.1 + 0.2), 0.3);
  assert.equal(String(snap(40 / 20)), '2');
});

test('a dragged clip moves by dx / px-per-second, snapped and never below 0', () => {
  assert.equal(movedStart(4, 40 / 20), 6);
  assert.equal(movedStart(4, 13 / 20), 4.65);
  assert.equal(movedStart(1, -100 / 20), 0);
});

test('clip length: to the end of the source, or its duration cut at the source end', () => {
  assert.equal(clipLength(clip(), 10), 9);
  assert.equal(clipLength(clip({ duration: 3 }), 10), 3);
  assert.equal(clipLength(clip({ duration: 30 }), 10), 9);
  assert.equal(clipLength(clip({ duration: 3 }), null), 3);
});

test('trimming the left edge moves start and offset together and shortens a set duration', () => {
  assert.deepEqual(trimLeft(clip({ duration: 5 }), 1.5, 10), { start: 5.5, offset: 2.5, duration: 3.5 });
  assert.deepEqual(trimLeft(clip(), 1, 10), { start: 5, offset: 2 }, 'a null duration stays null');
});

test('the left edge stops at offset 0 and start 0, and keeps a minimum length', () => {
  assert.deepEqual(trimLeft(clip({ start: 4, offset: 1 }), -3, 10), { start: 3, offset: 0 });
  assert.deepEqual(trimLeft(clip({ start: 0.5, offset: 2 }), -3, 10), { start: 0, offset: 1.5 });
  const t = trimLeft(clip({ duration: 2 }), 50, 10);
  assert.equal(t.duration, MIN_CLIP_S);
  assert.equal(t.start, 4 + 2 - MIN_CLIP_S);
});

test('the right edge sets a duration inside the source', () => {
  assert.equal(trimRight(clip(), -2, 10), 7);
  assert.equal(trimRight(clip({ duration: 3 }), 100, 10), 9);
  assert.equal(trimRight(clip({ duration: 3 }), -100, 10), MIN_CLIP_S);
});

test('split at the playhead: the clip ends there and a new one carries on the audio', () => {
  const ops = splitOps('c1', clip({ fade_in: 0.5, fade_out: 1, duration: 6 }), 6, 'c2', 10);
  assert.deepEqual(ops, [
    { op: 'set', kind: 'clip', id: 'c1', props: { duration: 2, fade_out: 0 } },
    {
      op: 'create',
      kind: 'clip',
      id: 'c2',
      props: { track: 't1', source: 'stem:7', start: 6, offset: 3, duration: 4, gain_db: 0, fade_in: 0, fade_out: 1 },
    },
  ]);
});

test('a split of a clip that plays to the end keeps the new clip open-ended', () => {
  const ops = splitOps('c1', clip(), 5, 'c2', 10);
  assert.equal(ops?.[1].props?.duration, null);
  assert.equal(ops?.[1].props?.offset, 2);
});

test('no split outside the clip', () => {
  assert.equal(splitOps('c1', clip({ duration: 2 }), 3, 'c2', 10), null);
  assert.equal(splitOps('c1', clip({ duration: 2 }), 6.5, 'c2', 10), null);
  assert.equal(splitOps('c1', clip({ duration: 2 }), 4, 'c2', 10), null);
});

test('objects sort by order in byte order, then id', () => {
  const sorted = sortedByOrder({ x: { order: 'a' }, y: { order: 'B' }, a: { order: 'a' }, z: { order: 'B0' } });
  assert.deepEqual(sorted.map(([id]) => id), ['y', 'z', 'a', 'x']);
});

test('moving a track up or down picks an order between its new neighbours', () => {
  const tracks = { a: { order: 'B' }, b: { order: 'D' }, c: { order: 'F' } };
  const sorted = sortedByOrder(tracks);
  const up = reorderKey(sorted, 'c', -1);
  assert.ok('B' < up && up < 'D');
  const down = reorderKey(sorted, 'a', 1);
  assert.ok('D' < down && down < 'F');
  assert.ok(reorderKey(sorted, 'b', 1) > 'F');
  assert.equal(reorderKey(sorted, 'a', -1), null);
  assert.equal(reorderKey(sorted, 'c', 1), null);
  assert.ok(appendKey(tracks) > 'F');
});

test('a clip shows the slice of its stem’s peaks between offset and offset + length', () => {
  // 10 pixels per second (sample_rate / samples_per_pixel), mono, pixel i = [-i, i].
  const data = [];
  for (let i = 0; i < 100; i++) data.push(-i, i);
  const peaks = { version: 2, channels: 1, sample_rate: 1000, samples_per_pixel: 100, bits: 8, length: 100, data };
  const part = slicePeaks(peaks, 2, 3.5, 10);
  assert.equal(part.length, 15);
  assert.deepEqual(part.data.slice(0, 2), [-20, 20]);
  assert.deepEqual(part.data.slice(-2), [-34, 34]);
  // Without a rate, positions come from the stem length.
  const noRate = slicePeaks({ channels: 1, data, length: 100 }, 5, 10, 10);
  assert.equal(noRate.length, 50);
  assert.deepEqual(noRate.data.slice(0, 2), [-50, 50]);
});

test('stereo peaks slice whole pixels of both channels', () => {
  const data = [];
  for (let i = 0; i < 10; i++) data.push(-i, i, -i - 100, i + 100);
  const part = slicePeaks({ channels: 2, sample_rate: 1, samples_per_pixel: 1, length: 10, data }, 1, 2, 10);
  assert.deepEqual(part.data, [-1, 1, -101, 101]);
});

test('bar ticks follow tempo and time signature and thin out when crowded', () => {
  const ticks = barTicks(120, [4, 4], 10, 100);
  assert.deepEqual(ticks.slice(0, 3), [
    { bar: 1, time: 0 },
    { bar: 2, time: 2 },
    { bar: 3, time: 4 },
  ]);
  const crowded = barTicks(120, [4, 4], 100, 5);
  assert.ok(crowded[1].time * 5 >= 56, 'labels at least 56 px apart');
  assert.equal(barTicks(120, [6, 8], 3, 100)[1].time, 1.5);
});

test('times and sources read as expected', () => {
  assert.equal(formatTime(61.257), '1:01.26');
  assert.equal(stemIdOf('stem:42'), 42);
  assert.equal(stemIdOf('drums.flac'), null);
});

test('adding a stem as a track is one track create and one clip create on it, appended last', () => {
  const ops = addStemOps({ t1: { order: 'V' } }, { id: 42, name: 'Bass DI' }, 'T', 'C');
  assert.equal(ops.length, 2);
  assert.equal(ops[0].kind, 'track');
  assert.equal(ops[0].props?.name, 'Bass DI');
  assert.ok(ops[0].props?.order > 'V');
  assert.deepEqual(ops[1], { op: 'create', kind: 'clip', id: 'C', props: { track: 'T', source: 'stem:42', start: 0 } });
});

test('comment threads: by time, replies under their parent oldest first, unsent last', () => {
  const c = (time, parent, created_at, text = '') => ({ time, track: null, parent, text, resolved: false, author: 1, author_name: 'a', created_at });
  const t = threads({
    late: c(9, null, '2026-01-01T00:00:00Z'),
    early: c(1, null, '2026-01-02T00:00:00Z'),
    r2: c(1, 'early', ''),
    r1: c(1, 'early', '2026-01-03T00:00:00Z'),
  });
  assert.deepEqual(t.map((x) => x.id), ['early', 'late']);
  assert.deepEqual(t[0].replies.map(([id]) => id), ['r1', 'r2']);
});

test('version lists and their change summaries are read from either shape', () => {
  assert.deepEqual(readVersionList({ versions: [{ id: 1, name: 'a' }, { name: 'no id' }] }).map((v) => v.id), [1]);
  assert.deepEqual(readVersionList([{ id: 2 }]).map((v) => v.id), [2]);
  assert.deepEqual(readVersionList(null), []);
  assert.deepEqual(describeChanges([{ user: { username: 'olivia' }, kinds: ['clip', 'track'] }, 'sam: markers']), ['olivia: clip, track', 'sam: markers']);
  assert.deepEqual(describeChanges({ olivia: 3 }), ['olivia: 3 edits']);
  assert.deepEqual(describeChanges(undefined), []);
});

test('presence: fields left out keep their value; leave removes; our own session is not overwritten', () => {
  const book = new PresenceBook();
  book.connected('me', { id: 1, name: 'me', colour: '#ffffff' }, { selection: [], playhead: 0 });
  book.receive({ type: 'presence', session: 'A', user: { id: 2, name: 'sam', colour: '#e4572e' }, selection: ['c1'], playhead: 3 });
  book.receive({ type: 'presence', session: 'A', playhead: 5 });
  const a = book.sessions.get('A');
  assert.deepEqual(a?.selection, ['c1']);
  assert.equal(a?.playhead, 5);
  assert.deepEqual(book.selectedBy('c1').map((p) => p.session), ['A']);
  assert.equal(book.receive({ type: 'presence', session: 'me', selection: ['x'] }), false);
  assert.deepEqual(book.all().map((p) => p.session), ['me', 'A']);
  book.receive({ type: 'presence.leave', session: 'A' });
  assert.deepEqual(book.others(), []);
});

test('presence refuses colours that are not plain hex', () => {
  const book = new PresenceBook();
  book.receive({ type: 'presence', session: 'A', user: { id: 2, name: 'x', colour: 'red;background:url(x)' } });
  assert.equal(book.sessions.get('A')?.user.colour, '#8d94a5');
});
