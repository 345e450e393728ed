import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RoundTrips, formatLatency, mediaRoundTripMs } from '../js/jam/latency.js';

test('the read-out is the median of the last few round trips', () => {
  const rt = new RoundTrips(5);
  assert.equal(rt.median(), null);
  for (const ms of [10, 12, 300, 11, 9]) rt.add(ms);
  assert.equal(rt.median(), 11); // one slow answer does not move it
  rt.add(13); // the oldest (10) goes
  assert.deepEqual(rt.values, [12, 300, 11, 9, 13]);
  assert.equal(rt.median(), 12);
  rt.add(Number.NaN);
  rt.add(-1);
  assert.equal(rt.values.length, 5);
  const even = new RoundTrips();
  even.add(2);
  even.add(4);
  assert.equal(even.median(), 3);
});

test('latency text names what was measured', () => {
  assert.equal(formatLatency({ socketMs: null }), 'Round trip to the server: measuring…');
  assert.equal(formatLatency({ socketMs: 12.4 }), 'Round trip to the server: signalling 12 ms');
  assert.equal(formatLatency({ socketMs: 12.4, mediaMs: 8.6 }), 'Round trip to the server: audio 9 ms, signalling 12 ms');
});

test('the media round trip comes from the selected candidate pair', () => {
  const reports = [
    { id: 'T1', type: 'transport', selectedCandidatePairId: 'CP2' },
    { id: 'CP1', type: 'candidate-pair', state: 'failed', currentRoundTripTime: 0.5 },
    { id: 'CP2', type: 'candidate-pair', state: 'succeeded', nominated: true, currentRoundTripTime: 0.004 },
  ];
  assert.equal(mediaRoundTripMs(reports), 4);
  assert.equal(mediaRoundTripMs(reports.slice(1)), 4); // no transport: the nominated pair
  assert.equal(mediaRoundTripMs([{ id: 'x', type: 'inbound-rtp' }]), null);
});
