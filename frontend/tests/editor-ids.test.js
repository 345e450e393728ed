import { test } from 'node:test';
import assert from 'node:assert/strict';

import { OpIds, randomId } from '../js/editor/ids.js';
import { ProjectSocket } from '../js/socket.js';

test('random ids are 12 characters of A-Za-z0-9 and differ', () => {
  const ids = new Set();
  for (let i = 0; i < 1000; i++) {
    const id = randomId();
    assert.match(id, /^[A-Za-z0-9]{12}$/);
    ids.add(id);
  }
  assert.equal(ids.size, 1000);
});

test('bytes that would bias the alphabet are skipped', () => {
  // 248..255 would favour the first letters; only 0 (-> "A") may be used.
  let calls = 0;
  const fill = (bytes) => {
    calls++;
    bytes.fill(calls === 1 ? 250 : 0);
    return bytes;
  };
  assert.equal(randomId(4, fill), 'AAAA');
  assert.equal(calls, 2);
});

test('client_op_ids count up under one prefix', () => {
  const ids = new OpIds('3f9a0c1d2b4e');
  assert.equal(ids.next(), '3f9a0c1d2b4e-1');
  assert.equal(ids.next(), '3f9a0c1d2b4e-2');
});

test('the socket sends JSON only while open', () => {
  const saved = globalThis.WebSocket;
  const sent = [];
  class Fake {
    static OPEN = 1;
    constructor() {
      this.readyState = 0;
    }
    send(data) {
      sent.push(data);
    }
    close() {}
  }
  globalThis.WebSocket = /** @type {any} */ (Fake);
  try {
    const socket = new ProjectSocket('ws://x/', { onEvent() {} });
    assert.equal(socket.send({ type: 'ping' }), false, 'no socket yet');
    socket.connect();
    assert.equal(socket.send({ type: 'ping' }), false, 'still connecting');
    socket.ws.readyState = 1;
    assert.equal(socket.send({ type: 'sync', since: 3 }), true);
    assert.deepEqual(sent.map((s) => JSON.parse(s)), [{ type: 'sync', since: 3 }]);
  } finally {
    globalThis.WebSocket = saved;
  }
});
