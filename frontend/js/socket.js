// The project WebSocket: connect, dispatch events by type, reconnect with
// capped exponential backoff. Events missed while disconnected are not
// replayed, so the page resyncs over REST on every `hello` after the first.

/** Application close code: not a member (or the project is gone). Retrying cannot help. */
export const CLOSE_NOT_ALLOWED = 4403;

/**
 * Delay before reconnect attempt `attempt` (0-based). Jittered so every
 * client of a restarted server does not come back in the same instant.
 * @param {number} attempt
 * @param {{ base?: number, cap?: number }} [options] milliseconds
 * @param {() => number} [random] 0..1
 */
export function backoffDelay(attempt, { base = 500, cap = 15000 } = {}, random = Math.random) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/**
 * @param {{ protocol: string, host: string }} location
 * @param {number | string} projectId
 */
export function projectSocketUrl(location, projectId) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws/projects/${projectId}/`;
}

/** @typedef {'connecting' | 'open' | 'reconnecting' | 'closed'} SocketState */

/**
 * @typedef {object} SocketOptions
 * @property {(event: { type: string, [key: string]: any }) => void} onEvent
 * @property {(state: SocketState, detail?: { code?: number, delay?: number }) => void} [onState]
 * @property {number} [pingIntervalMs] keeps idle proxies from dropping the connection
 */

export class ProjectSocket {
  /**
   * @param {string} url
   * @param {SocketOptions} options
   */
  constructor(url, options) {
    this.url = url;
    this.options = options;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    this.lastMessageAt = 0;
    this.onOnline = () => {
      // The network came back: skip whatever backoff is left.
      if (!this.stopped && !this.ws) {
        clearTimeout(this.retryTimer);
        this.connect();
      }
    };
  }

  start() {
    this.stopped = false;
    if (typeof window !== 'undefined') window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (typeof window !== 'undefined') window.removeEventListener('online', this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
    this.setState('closed');
  }

  /**
   * Send one JSON message if the connection is open. Nothing is queued: a
   * caller that must not lose a message keeps it and sends it again after
   * the next `hello`.
   * @param {object} message
   * @returns {boolean} whether it was handed to the socket
   */
  send(message) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  /** @param {SocketState} state @param {{ code?: number, delay?: number }} [detail] */
  setState(state, detail) {
    this.options.onState?.(state, detail);
  }

  connect() {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
      this.startPings(ws);
    };
    ws.onmessage = (e) => {
      this.lastMessageAt = Date.now();
      let event;
      try {
        event = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (!event || typeof event.type !== 'string') return;
      if (event.type === 'hello') {
        // Only a welcomed connection counts as up: an accept followed by an
        // immediate close must keep backing off.
        this.attempt = 0;
        this.setState('open');
      }
      if (event.type === 'pong') return;
      this.options.onEvent(event);
    };
    ws.onclose = (e) => this.closed(ws, e.code);
    // onerror is always followed by onclose, which does the retrying.
  }

  /** @param {WebSocket} ws @param {number} code */
  closed(ws, code) {
    clearInterval(this.pingTimer);
    if (this.ws !== ws) return; // replaced, stopped, or already handled
    this.ws = null;
    if (this.stopped) return;
    if (code === CLOSE_NOT_ALLOWED) {
      this.stopped = true;
      this.setState('closed', { code });
      return;
    }
    const delay = backoffDelay(this.attempt++);
    this.setState('reconnecting', { code, delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** @param {WebSocket} ws */
  startPings(ws) {
    const interval = this.options.pingIntervalMs ?? 25000;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      // A half-open TCP connection fires onclose only after a long timeout;
      // two missed answers are taken as dead, and we move on at once.
      if (Date.now() - this.lastMessageAt > interval * 2 + 5000) {
        ws.close(4000, 'no answer to pings');
        this.closed(ws, 4000);
        return;
      }
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping', id: Date.now() }));
    }, interval);
  }
}
