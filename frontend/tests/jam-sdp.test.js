import { test } from 'node:test';
import assert from 'node:assert/strict';

import { preferStereoOpus, candidateAddresses } from '../js/jam/sdp.js';

const OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 0',
  'c=IN IP4 0.0.0.0',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:0 PCMU/8000',
  'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0',
  'a=candidate:2 1 udp 2122194687 192.168.1.20 50001 typ host generation 0',
  '',
].join('\r\n');

test('stereo is asked for on the Opus format only', () => {
  const out = preferStereoOpus(OFFER);
  assert.match(out, /\r\na=fmtp:111 minptime=10;useinbandfec=1;stereo=1\r\n/);
  assert.match(out, /\r\na=fmtp:63 111\/111\r\n/); // RED untouched
  assert.equal(out.split('\r\n').length, OFFER.split('\r\n').length);
});

test('an existing stereo parameter is replaced, not doubled', () => {
  const out = preferStereoOpus(OFFER.replace('useinbandfec=1', 'stereo=0;useinbandfec=1'));
  assert.match(out, /a=fmtp:111 minptime=10;useinbandfec=1;stereo=1\r\n/);
  assert.equal(out.match(/stereo=/g)?.length, 1);
});

test('an Opus format without fmtp gets one after its rtpmap', () => {
  const sdp = 'v=0\nm=audio 9 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=sendrecv\n';
  assert.equal(preferStereoOpus(sdp), 'v=0\nm=audio 9 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=fmtp:96 stereo=1\na=sendrecv\n');
});

test('a description without Opus is left alone', () => {
  const sdp = 'v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
  assert.equal(preferStereoOpus(sdp), sdp);
});

test('candidate addresses are listed in order', () => {
  assert.deepEqual(candidateAddresses(OFFER), ['127.0.0.1', '192.168.1.20']);
  assert.deepEqual(candidateAddresses('v=0\r\n'), []);
});
