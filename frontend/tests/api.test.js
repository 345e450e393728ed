import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ApiError, csrfToken, parseError } from '../js/api.js';

test('parseError shows the server message and code', () => {
  const body = JSON.stringify({ error: { code: 'too_large', message: 'file is larger than the 1 MB upload limit' } });
  assert.deepEqual(parseError(413, body), { message: 'file is larger than the 1 MB upload limit', code: 'too_large' });
});

test('parseError falls back when the body is not the API shape', () => {
  assert.match(parseError(413, '<html>Request Entity Too Large</html>').message, /too large/);
  assert.match(parseError(403, '<h1>CSRF verification failed</h1>').message, /not allowed/);
  assert.match(parseError(502, '').message, /HTTP 502/);
  assert.match(parseError(0, '').message, /reach the server/);
  assert.equal(parseError(401, JSON.stringify({ detail: 'Not logged in' })).message, 'Not logged in');
});

test('csrfToken reads the csrftoken cookie among others', () => {
  assert.equal(csrfToken('sessionid=abc; csrftoken=T0k%2Ben; theme=dark'), 'T0k+en');
  assert.equal(csrfToken('csrftoken=x'), 'x');
  assert.equal(csrfToken('notcsrftoken=x'), '');
  assert.equal(csrfToken(''), '');
});

test('ApiError carries status and code', () => {
  const err = new ApiError('nope', 403, 'forbidden');
  assert.ok(err instanceof Error);
  assert.equal(err.message, 'nope');
  assert.equal(err.status, 403);
  assert.equal(err.code, 'forbidden');
});
