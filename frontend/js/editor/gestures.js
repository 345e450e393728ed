// Live gestures (docs/protocol.md §3): others' fader and clip drags shown
// before they commit, and a rate limit for our own. Pure; time is passed in.

/**
 * @typedef {import('./state.js').DocState} DocState
 * @typedef {import('./state.js').Op} Op
 * @typedef {import('./state.js').Message} Message
 *
 * @typedef {object} LiveGesture
 * @property {string} session who is dragging
 * @property {string} kind
 * @property {string} id
 * @property {Record<string, any>} props
 * @property {number} at when the last message came
 */

/** The protocol's limit is 20 per second; a little under it leaves room for network jitter. */
export const GESTURE_INTERVAL_MS = 60;
/** A sender that vanished mid-drag (closed the tab) leaves no `end`: forget it. */
export const GESTURE_MAX_AGE_MS = 4000;

export class GestureOverlay {
  constructor() {
    /** @type {Map<string, LiveGesture>} by kind:id */
    this.live = new Map();
  }

  /**
   * A received `gesture` message.
   * @param {Message} msg
   * @param {number} now
   * @returns {boolean} whether what is shown changed
   */
  receive(msg, now) {
    if (typeof msg.kind !== 'string' || typeof msg.id !== 'string') return false;
    const key = `${msg.kind}:${msg.id}`;
    const session = typeof msg.session === 'string' ? msg.session : '';
    if (msg.end) {
      const current = this.live.get(key);
      if (!current || current.session !== session) return false;
      this.live.delete(key);
      return true;
    }
    if (!msg.props || typeof msg.props !== 'object') return false;
    const current = this.live.get(key);
    const props = current && current.session === session ? { ...current.props, ...msg.props } : { ...msg.props };
    this.live.set(key, { session, kind: msg.kind, id: msg.id, props, at: now });
    return true;
  }

  /**
   * A committed edit settles the properties it sets (the gesture's own
   * commit, or someone else's later write, which wins anyway).
   * @param {Op[]} ops
   * @returns {boolean}
   */
  settle(ops) {
    let changed = false;
    for (const op of ops) {
      const key = `${op.kind}:${op.id}`;
      const g = this.live.get(key);
      if (!g) continue;
      if (op.op !== 'set') {
        this.live.delete(key);
        changed = true;
        continue;
      }
      for (const prop of Object.keys(op.props ?? {})) {
        if (prop in g.props) {
          delete g.props[prop];
          changed = true;
        }
      }
      if (Object.keys(g.props).length === 0) this.live.delete(key);
    }
    return changed;
  }

  /**
   * @param {string} session
   * @returns {boolean}
   */
  dropSession(session) {
    let changed = false;
    for (const [key, g] of this.live) {
      if (g.session === session) {
        this.live.delete(key);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * @param {number} now
   * @returns {boolean}
   */
  expire(now) {
    let changed = false;
    for (const [key, g] of this.live) {
      if (now - g.at > GESTURE_MAX_AGE_MS) {
        this.live.delete(key);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * The state with live gestures on top. Only the touched objects are
   * copied; `state` is not changed.
   * @param {DocState} state
   * @returns {DocState}
   */
  apply(state) {
    if (this.live.size === 0) return state;
    const out = /** @type {Record<string, Record<string, any>>} */ ({ ...state });
    for (const g of this.live.values()) {
      const objects = out[g.kind];
      const target = objects?.[g.id];
      if (!target) continue;
      if (objects === /** @type {Record<string, any>} */ (state)[g.kind]) out[g.kind] = { ...objects };
      const props = { ...g.props };
      if (props.params && typeof props.params === 'object') props.params = { ...target.params, ...props.params };
      out[g.kind][g.id] = { ...target, ...props };
    }
    return /** @type {DocState} */ (/** @type {unknown} */ (out));
  }

  /**
   * Who is dragging this object, if anyone.
   * @param {string} kind
   * @param {string} id
   */
  sessionOf(kind, id) {
    return this.live.get(`${kind}:${id}`)?.session ?? null;
  }
}

/**
 * Rate-limit a sender: the first call goes at once, later ones at most every
 * `interval` ms, and the newest value waiting when the interval ends still
 * goes (so the last position of a drag is not lost).
 *
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {number} interval ms
 * @param {{ now?: () => number, setTimeout?: (f: () => void, ms: number) => any, clearTimeout?: (t: any) => void }} [clock]
 */
export function throttle(fn, interval, clock = {}) {
  const now = clock.now ?? (() => Date.now());
  const set = clock.setTimeout ?? ((f, ms) => setTimeout(f, ms));
  const clear = clock.clearTimeout ?? ((t) => clearTimeout(t));
  let last = -Infinity;
  /** @type {A | null} */
  let waiting = null;
  /** @type {any} */
  let timer = null;

  const fire = () => {
    timer = null;
    if (!waiting) return;
    const args = waiting;
    waiting = null;
    last = now();
    fn(...args);
  };

  /** @param {A} args */
  const call = (...args) => {
    const wait = last + interval - now();
    if (wait <= 0 && timer === null) {
      last = now();
      fn(...args);
      return;
    }
    waiting = args;
    if (timer === null) timer = set(fire, Math.max(0, wait));
  };
  /** Drop a waiting call (the gesture is over). */
  call.cancel = () => {
    waiting = null;
    if (timer !== null) clear(timer);
    timer = null;
  };
  return call;
}
