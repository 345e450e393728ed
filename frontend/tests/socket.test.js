import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backoffDelay, CLOSE_NOT_ALLOWED, ProjectSocket, projectSocketUrl } from '../js/socket.js';

test('backoff doubles from the base and stops at the cap', () => {
  const full = () => 1; // no jitter: the ceiling itself
  assert.deepEqual([0, 1, 2, 3].map((a) => backoffDelay(a, { base: 500, cap: 15000 }, full)), [500, 1000, 2000, 4000]);
  assert.equal(backoffDelay(10, { base: 500, cap: 15000 }, full), 15000);
  assert.equal(backoffDelay(1000, { base: 500, cap: 15000 }, full), 15000);
});

test('backoff jitter stays between half and all of the ceiling', () => {
  assert.equal(backoffDelay(2, { base: 500, cap: 15000 }, () => 0), 1000);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(3);
    assert.ok(d >= 2000 && d <= 4000, String(d));
  }
});

test('socket URL follows the page scheme', () => {
  assert.equal(projectSocketUrl({ protocol: 'http:', host: 'localhost:8000' }, 7), 'ws://localhost:8000/ws/projects/7/');
  assert.equal(projectSocketUrl({ protocol: 'https:', host: 'studio.example' }, 7), 'wss://studio.example/ws/projects/7/');
});

class FakeWebSocket {
  static OPEN = 1;
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close() {}
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  message(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

function withFakeSocket(fn) {
  const saved = globalThis.WebSocket;
  globalThis.WebSocket = FakeWebSocket;
  FakeWebSocket.instances = [];
  try {
    fn();
  } finally {
    globalThis.WebSocket = saved;
  }
}

test('events are dispatched, pongs swallowed, and a drop schedules a reconnect', () => {
  withFakeSocket(() => {
    const events = [];
    const states = [];
    const s = new ProjectSocket('ws://x/ws/projects/1/', {
      onEvent: (e) => events.push(e.type),
      onState: (st, d) => states.push([st, d?.delay]),
    });
    s.start();
    const ws = FakeWebSocket.instances[0];
    ws.open();
    ws.message({ type: 'hello', project_id: 1, role: 'owner', revision: 0 });
    ws.message({ type: 'stem.progress', stem_id: 3, progress: 0.5 });
    ws.message({ type: 'pong', id: 1 });
    ws.onmessage?.({ data: 'not json' });
    assert.deepEqual(events, ['hello', 'stem.progress']);
    ws.drop(1006);
    const [state, delay] = states.at(-1);
    assert.equal(state, 'reconnecting');
    assert.ok(delay >= 250 && delay <= 500);
    s.stop();
    assert.equal(states.at(-1)[0], 'closed');
    assert.equal(FakeWebSocket.instances.length, 1);
  });
});

test('a not-allowed close stops for good', () => {
  withFakeSocket(() => {
    const states = [];
    const s = new ProjectSocket('ws://x/', { onEvent: () => {}, onState: (st, d) => states.push([st, d?.code]) });
    s.start();
    FakeWebSocket.instances[0].drop(CLOSE_NOT_ALLOWED);
    assert.deepEqual(states.at(-1), ['closed', CLOSE_NOT_ALLOWED]);
    assert.equal(s.stopped, true);
    s.stop();
  });
});
