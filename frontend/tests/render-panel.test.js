import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FORMATS, describeRender, isNewer, renderRequest } from '../js/render-panel.js';

/** @returns {any} */
function job(fields = {}) {
  return {
    id: 1, revision: 42, version: null, format: 'flac', bit_depth: '24', mp3_quality: null,
    master: 'none', master_lufs: null, stems: false, status: 'queued', progress: 0, attempts: 0,
    ...fields,
  };
}

test('every format choice asks for one server format', () => {
  assert.deepEqual(Object.keys(FORMATS), ['wav16', 'wav24', 'wav32f', 'flac16', 'flac24', 'mp3_320', 'mp3_v2']);
  const base = { master: 'none', stems: false, source: 'current' };
  assert.deepEqual(renderRequest({ ...base, format: 'wav32f' }), { format: 'wav', bit_depth: '32f', master: 'none', stems: false });
  assert.deepEqual(renderRequest({ ...base, format: 'mp3_v2' }), { format: 'mp3', mp3_quality: 'V2', master: 'none', stems: false });
  assert.throws(() => renderRequest({ ...base, format: 'ogg' }), /unknown format/);
});

test('a version, stems and a custom target go into the request', () => {
  const body = renderRequest({ format: 'flac16', master: 'custom', masterLufs: '-9.5', stems: true, source: 'version:17' });
  assert.deepEqual(body, { format: 'flac', bit_depth: '16', master: -9.5, stems: true, version: 17 });
  // Left for the server to explain rather than silently replaced.
  assert.equal(renderRequest({ format: 'wav24', master: 'custom', masterLufs: '', stems: false, source: 'current' }).master, '');
  assert.equal(renderRequest({ format: 'wav24', master: 'ebu', stems: false, source: 'current' }).master, 'ebu');
});

test('renders are described by format, mastering, stems and what was rendered', () => {
  assert.equal(describeRender(job({ master: 'streaming' })), 'FLAC 24-bit · streaming master · r42');
  assert.equal(describeRender(job({ format: 'wav', bit_depth: '32f', stems: true })), 'WAV 32-bit float · stems · r42');
  assert.equal(describeRender(job({ format: 'mp3', bit_depth: null, mp3_quality: 'V2', master: 'custom', master_lufs: -10 })), 'MP3 V2 · mastered to −10 LUFS · r42');
  assert.equal(describeRender(job({ version: { id: 3, name: 'Rough mix' } })), 'FLAC 24-bit · version “Rough mix”');
});

test('a late answer never steps a render back, but a retry does', () => {
  assert.equal(isNewer(undefined, job()), true);
  assert.equal(isNewer(job({ status: 'done', attempts: 1 }), job({ status: 'queued', attempts: 0 })), false);
  assert.equal(isNewer(job({ status: 'running', attempts: 1 }), job({ status: 'done', attempts: 1 })), true);
  assert.equal(isNewer(job({ status: 'running', attempts: 1 }), job({ status: 'running', attempts: 1, cancel_requested: true })), true);
  assert.equal(isNewer(job({ status: 'running', attempts: 1 }), job({ status: 'running', attempts: 2 })), true);
});
