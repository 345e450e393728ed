// The editor's copy of the project document and its revision bookkeeping
// (docs/protocol.md §2–4). Pure: no DOM, no socket. Every method takes a
// server message or a user action and returns the messages to send, so the
// page only moves messages and tests can drive it message by message.
//
// Two layers: `confirmed` is the server's state at revision R, built only
// from server edits applied in revision order; the view is `confirmed` plus
// this client's edits the server has not yet confirmed, replayed on top.
// Replaying (rather than patching the view) is what rebases: when someone
// else's edit lands first, ours are simply applied again after it, which is
// last-writer-wins per property, the server's own rule.

import { keyBetween } from './order.js';
import { OpIds, randomId } from './ids.js';

/**
 * @typedef {'project' | 'track' | 'clip' | 'effect' | 'marker' | 'comment'} Kind
 * @typedef {Record<string, any>} Props
 * @typedef {{ op: 'create' | 'set' | 'delete', kind: Kind, id: string, props?: Props }} Op
 *
 * @typedef {object} ProjectProps
 * @property {number} sample_rate
 * @property {number} tempo_bpm
 * @property {[number, number]} time_signature
 * @property {number} master_gain_db
 *
 * @typedef {object} Track
 * @property {string} name
 * @property {string} order
 * @property {number} gain_db
 * @property {number} pan
 * @property {boolean} mute
 * @property {boolean} solo
 *
 * @typedef {object} Clip
 * @property {string} track
 * @property {string} source "stem:<id>"
 * @property {number} start
 * @property {number} offset
 * @property {number | null} duration
 * @property {number} gain_db
 * @property {number} fade_in
 * @property {number} fade_out
 *
 * @typedef {object} Effect
 * @property {string | null} track null for the master bus
 * @property {string} order
 * @property {string} type
 * @property {Record<string, number | string>} params
 *
 * @typedef {object} Marker
 * @property {number} time
 * @property {string} name
 *
 * @typedef {object} Comment
 * @property {number} time
 * @property {string | null} track
 * @property {string | null} parent
 * @property {string} text
 * @property {boolean} resolved
 * @property {number | null} [author]
 * @property {string} [author_name]
 * @property {string} [created_at] empty while the server has not confirmed it
 *
 * @typedef {object} DocState
 * @property {Record<string, ProjectProps>} project the settings live under id "project"
 * @property {Record<string, Track>} track
 * @property {Record<string, Clip>} clip
 * @property {Record<string, Effect>} effect
 * @property {Record<string, Marker>} marker
 * @property {Record<string, Comment>} comment
 *
 * @typedef {object} EditMessage
 * @property {'edit'} type
 * @property {number} revision
 * @property {string} [kind] edit, undo, redo, restore or settings
 * @property {string | null} [client_op_id]
 * @property {{ id: number, name: string } | null} [user]
 * @property {Op[]} ops
 *
 * @typedef {{ type: string, [key: string]: any }} Message
 *
 * @typedef {object} PendingEdit
 * @property {string} client_op_id
 * @property {number} base_revision
 * @property {Op[]} ops
 * @property {number | null} acked the revision the server gave it, once acknowledged
 * @property {number} ackedAt
 * @property {boolean} stale refused as stale_revision: resend after the next resync
 *
 * @typedef {object} Outcome
 * @property {Message[]} send messages to send, in order
 * @property {boolean} changed the view changed
 * @property {EditMessage[]} applied server edits applied to the confirmed state, in order
 * @property {PendingEdit | null} dropped our edit the server refused (it is rolled back)
 */

export const PROJECT_ID = 'project';
/** @type {Kind[]} */
export const KINDS = ['project', 'track', 'clip', 'effect', 'marker', 'comment'];
export const MAX_OPS_PER_EDIT = 100;
/** An acknowledged edit whose broadcast has not come after this long was lost: resync. */
export const ACK_GRACE_MS = 3000;
/** A sync request unanswered after this long may be sent again. */
export const SYNC_TIMEOUT_MS = 5000;

/** What `create` fills in when a property is left out (§2). */
const DEFAULTS = {
  project: {},
  track: { gain_db: 0, pan: 0, mute: false, solo: false },
  clip: { start: 0, offset: 0, duration: null, gain_db: 0, fade_in: 0, fade_out: 0 },
  effect: { track: null, params: {} },
  marker: { name: '' },
  comment: { track: null, parent: null, resolved: false, author: null, author_name: '', created_at: '' },
};

/** @returns {DocState} */
export function emptyState() {
  return { project: {}, track: {}, clip: {}, effect: {}, marker: {}, comment: {} };
}

/** @param {unknown} v @returns {v is Record<string, any>} */
function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The project's settings, or sensible defaults before the document arrives.
 * @param {DocState} state
 * @returns {ProjectProps}
 */
export function projectOf(state) {
  /** @type {ProjectProps} */
  const defaults = { sample_rate: 48000, tempo_bpm: 120, time_signature: [4, 4], master_gain_db: 0 };
  return { ...defaults, ...state.project[PROJECT_ID] };
}

/**
 * A state from the server (snapshot or version) in the shape this module
 * uses. §2's example writes the project's settings directly under
 * "project", while ops address them as the object with id "project":
 * accept both. A renderer-shaped document (ARCHITECTURE.md §4) is converted.
 * @param {unknown} raw
 * @returns {DocState}
 */
export function toDocState(raw) {
  if (isObject(raw) && Array.isArray(raw.tracks)) return fromDocument(raw);
  const state = emptyState();
  if (!isObject(raw)) return state;
  for (const kind of KINDS) {
    const objects = raw[kind];
    if (isObject(objects)) /** @type {Record<string, any>} */ (state)[kind] = structuredClone(objects);
  }
  const project = /** @type {Record<string, any>} */ (state.project);
  if (!isObject(project[PROJECT_ID]) && ('tempo_bpm' in project || 'sample_rate' in project)) {
    state.project = { [PROJECT_ID]: /** @type {ProjectProps} */ (project) };
  }
  return state;
}

/**
 * The renderer's document (tracks as a list, effects inline) as flat state.
 * Orders are made up from list positions; clip ids come from the document.
 * @param {Record<string, any>} doc
 * @returns {DocState}
 */
export function fromDocument(doc) {
  const state = emptyState();
  state.project[PROJECT_ID] = {
    sample_rate: doc.sample_rate ?? 48000,
    tempo_bpm: doc.tempo_bpm ?? 120,
    time_signature: doc.time_signature ?? [4, 4],
    master_gain_db: doc.master?.gain_db ?? 0,
  };
  /** @param {any[]} effects @param {string | null} track @param {string} prefix */
  const addEffects = (effects, track, prefix) => {
    /** @type {string | null} */
    let order = null;
    effects.forEach((e, i) => {
      const { type, ...params } = e;
      order = keyBetween(order, null) ?? String(i);
      state.effect[`${prefix}-fx${i}`] = { track, order, type, params };
    });
  };
  /** @type {string | null} */
  let order = null;
  doc.tracks.forEach((/** @type {Record<string, any>} */ t, /** @type {number} */ i) => {
    const id = String(t.id ?? `track${i}`);
    order = keyBetween(order, null) ?? String(i);
    state.track[id] = {
      name: t.name ?? id,
      order,
      gain_db: t.gain_db ?? 0,
      pan: t.pan ?? 0,
      mute: t.mute ?? false,
      solo: t.solo ?? false,
    };
    (t.clips ?? []).forEach((/** @type {Record<string, any>} */ c, /** @type {number} */ j) => {
      const { id: clipId, ...props } = c;
      state.clip[String(clipId ?? `${id}-c${j}`)] = /** @type {Clip} */ ({ ...DEFAULTS.clip, ...props, track: id });
    });
    addEffects(t.effects ?? [], id, id);
  });
  addEffects(doc.master?.effects ?? [], null, 'master');
  return state;
}

/**
 * Apply one op, forgivingly: an op that no longer applies (a `set` on what
 * someone deleted) is skipped, never thrown, because the server has the
 * final word and will tell us. Deleting a track or comment takes its clips,
 * effects or replies along, as on the server.
 * @param {DocState} state changed in place
 * @param {Op} op
 * @returns {boolean} whether anything changed
 */
export function applyOp(state, op) {
  const all = /** @type {Record<string, Record<string, Props>>} */ (/** @type {unknown} */ (state));
  const objects = all[op.kind];
  if (!objects || typeof op.id !== 'string') return false;
  if (op.op === 'create') {
    if (op.kind === 'project') return false;
    objects[op.id] = { ...structuredClone(DEFAULTS[op.kind]), ...structuredClone(op.props ?? {}) };
    return true;
  }
  if (op.op === 'set') {
    const target = objects[op.id];
    if (!target) return false;
    for (const [key, value] of Object.entries(op.props ?? {})) {
      // Effect params merge: a set carries only the parameters it changes.
      if (key === 'params' && isObject(value)) target.params = { ...target.params, ...structuredClone(value) };
      else target[key] = structuredClone(value);
    }
    return true;
  }
  if (op.op === 'delete') {
    if (!(op.id in objects)) return false;
    delete objects[op.id];
    if (op.kind === 'track') {
      for (const kind of /** @type {const} */ (['clip', 'effect'])) {
        for (const [id, o] of Object.entries(all[kind])) if (o.track === op.id) delete all[kind][id];
      }
    } else if (op.kind === 'comment') {
      for (const [id, c] of Object.entries(all.comment)) if (c.parent === op.id) delete all.comment[id];
    }
    return true;
  }
  return false;
}

/**
 * @param {DocState} state
 * @param {Op[]} ops
 */
export function applyOps(state, ops) {
  for (const op of ops) applyOp(state, op);
}

/**
 * @param {PendingEdit} entry
 * @returns {Message}
 */
function editMessage(entry) {
  return { type: 'edit', client_op_id: entry.client_op_id, base_revision: entry.base_revision, ops: structuredClone(entry.ops) };
}

/** @returns {Outcome} */
function outcome() {
  return { send: [], changed: false, applied: [], dropped: null };
}

export class EditorSync {
  /**
   * @param {{ id: number, name: string }} me fills in our own comments until the server does
   */
  constructor(me) {
    this.me = me;
    /** The confirmed state has come (first snapshot applied). */
    this.loaded = false;
    /** R: the revision of the confirmed state. */
    this.revision = 0;
    this.confirmed = emptyState();
    /** @type {PendingEdit[]} ours, oldest first, until their broadcast is applied */
    this.pending = [];
    /** @type {Map<number, EditMessage>} edits above R + 1, kept until the gap closes */
    this.buffer = new Map();
    this.syncing = false;
    this.syncAt = 0;
    /** @type {OpIds | null} */
    this.ids = null;
    /** @type {DocState | null} */
    this.cachedView = null;
  }

  /** The state to show: confirmed plus our unconfirmed edits. Do not mutate. */
  view() {
    if (!this.cachedView) {
      if (this.pending.length === 0) {
        this.cachedView = this.confirmed;
      } else {
        const view = structuredClone(this.confirmed);
        for (const entry of this.pending) for (const op of entry.ops) applyOp(view, this.localize(view, op));
        this.cachedView = view;
      }
    }
    return this.cachedView;
  }

  /**
   * What the server will add to our comment creates, so they show as ours
   * at once; the server's version replaces it on confirmation.
   * @param {DocState} view
   * @param {Op} op
   * @returns {Op}
   */
  localize(view, op) {
    if (op.op !== 'create' || op.kind !== 'comment') return op;
    /** @type {Props} */
    const props = { ...op.props, author: this.me.id, author_name: this.me.name, created_at: '' };
    // Threads are one level deep on the server too.
    const parent = props.parent ? view.comment[props.parent] : null;
    if (parent && parent.parent) props.parent = parent.parent;
    return { ...op, props };
  }

  invalidate() {
    this.cachedView = null;
  }

  /** A client_op_id for any request (edit, undo, redo...), or null before the first hello. */
  nextOpId() {
    return this.ids ? this.ids.next() : null;
  }

  /**
   * Every `hello`. The first asks for the whole document; later ones (after
   * a drop) ask for what was missed and resend what the server may not
   * have received, with the same client_op_ids (§4).
   * @param {Message} hello
   * @param {number} [now]
   * @returns {Message[]}
   */
  hello(hello, now = Date.now()) {
    if (!this.ids) this.ids = new OpIds(typeof hello.session === 'string' && hello.session ? hello.session : randomId());
    this.syncing = true;
    this.syncAt = now;
    if (!this.loaded) return [{ type: 'sync' }];
    /** @type {Message[]} */
    const out = [{ type: 'sync', since: this.revision }];
    for (const entry of this.pending) if (entry.acked === null) out.push(editMessage(entry));
    return out;
  }

  /**
   * Propose an edit: it shows at once and is kept until the server confirms
   * or refuses it. More than 100 ops go as several edits.
   * @param {Op[]} ops
   * @returns {Message[]} the edit messages to send (none before the document has loaded)
   */
  edit(ops) {
    if (!this.loaded || !this.ids || ops.length === 0) return [];
    /** @type {Message[]} */
    const out = [];
    for (let i = 0; i < ops.length; i += MAX_OPS_PER_EDIT) {
      /** @type {PendingEdit} */
      const entry = {
        client_op_id: this.ids.next(),
        base_revision: this.revision,
        ops: structuredClone(ops.slice(i, i + MAX_OPS_PER_EDIT)),
        acked: null,
        ackedAt: 0,
        stale: false,
      };
      this.pending.push(entry);
      out.push(editMessage(entry));
    }
    this.invalidate();
    return out;
  }

  /**
   * One server message.
   * @param {Message} msg
   * @param {number} [now]
   * @returns {Outcome}
   */
  receive(msg, now = Date.now()) {
    const result = outcome();
    switch (msg.type) {
      case 'snapshot':
        this.snapshot(msg, result, now);
        break;
      case 'sync':
        this.syncAnswer(msg, result, now);
        break;
      case 'edit':
        if (Number.isInteger(msg.revision) && Array.isArray(msg.ops)) {
          this.keep(/** @type {EditMessage} */ (msg));
          this.drain(result, now);
        }
        break;
      case 'ack':
        this.ack(msg, result, now);
        break;
      case 'error':
        this.error(msg, result, now);
        break;
      default:
        break;
    }
    return result;
  }

  /**
   * Called about once a second while connected: recovers from a lost edit
   * broadcast (acknowledged, never seen) or a sync request never answered.
   * @param {number} [now]
   * @returns {Message[]}
   */
  tick(now = Date.now()) {
    if (this.syncing && now - this.syncAt > SYNC_TIMEOUT_MS) this.syncing = false;
    if (!this.loaded) return this.syncing ? [] : this.requestSync(now);
    const lost = this.pending.some((e) => e.acked !== null && e.acked > this.revision && now - e.ackedAt > ACK_GRACE_MS);
    return lost || this.buffer.size > 0 || this.pending.some((e) => e.stale) ? this.requestSync(now) : [];
  }

  /** @param {number} now @returns {Message[]} */
  requestSync(now) {
    if (this.syncing) return [];
    this.syncing = true;
    this.syncAt = now;
    return [this.loaded ? { type: 'sync', since: this.revision } : { type: 'sync' }];
  }

  /** @param {EditMessage} msg */
  keep(msg) {
    if (this.loaded && msg.revision <= this.revision) return; // a duplicate
    this.buffer.set(msg.revision, msg);
  }

  /**
   * Apply kept edits while they follow on; if some are left, there is a gap.
   * @param {Outcome} result
   * @param {number} now
   * @param {boolean} [askOnGap] false: leave asking again to tick()
   */
  drain(result, now, askOnGap = true) {
    if (!this.loaded) return;
    for (let next = this.buffer.get(this.revision + 1); next; next = this.buffer.get(this.revision + 1)) {
      this.buffer.delete(next.revision);
      this.applyEdit(next, result);
    }
    for (const revision of this.buffer.keys()) if (revision <= this.revision) this.buffer.delete(revision);
    if (askOnGap && this.buffer.size > 0) result.send.push(...this.requestSync(now));
  }

  /**
   * @param {EditMessage} msg
   * @param {Outcome} result
   */
  applyEdit(msg, result) {
    applyOps(this.confirmed, msg.ops);
    this.revision = msg.revision;
    // Ours is now part of the confirmed state: stop replaying it.
    const mine = msg.client_op_id && (!msg.user || msg.user.id === this.me.id);
    if (mine) this.pending = this.pending.filter((e) => e.client_op_id !== msg.client_op_id);
    this.invalidate();
    result.changed = true;
    result.applied.push(msg);
  }

  /**
   * @param {Message} msg
   * @param {Outcome} result
   * @param {number} now
   */
  snapshot(msg, result, now) {
    if (!Number.isInteger(msg.revision)) return;
    this.confirmed = toDocState(msg.state);
    this.revision = msg.revision;
    this.loaded = true;
    this.syncing = false;
    // Acknowledged edits at or below R are in the snapshot. Unacknowledged
    // ones stay: they are in flight or will be resent.
    this.pending = this.pending.filter((e) => e.acked === null || e.acked > this.revision);
    this.invalidate();
    result.changed = true;
    this.drain(result, now);
    result.send.push(...this.resendStale());
  }

  /**
   * @param {Message} msg
   * @param {Outcome} result
   * @param {number} now
   */
  syncAnswer(msg, result, now) {
    this.syncing = false;
    if (!this.loaded) {
      // Edits only make sense on top of a document we do not have yet.
      result.send.push(...this.requestSync(now));
      return;
    }
    const edits = Array.isArray(msg.edits) ? msg.edits : [];
    for (const e of edits) if (Number.isInteger(e?.revision) && Array.isArray(e.ops)) this.keep({ ...e, type: 'edit' });
    // An answer that closed nothing must not start a request loop with a
    // server that cannot fill the gap: tick() asks again a second later.
    const before = this.revision;
    this.drain(result, now, false);
    if (this.buffer.size > 0 && this.revision > before) result.send.push(...this.requestSync(now));
    result.send.push(...this.resendStale());
  }

  /**
   * @param {Message} msg
   * @param {Outcome} result
   * @param {number} now
   */
  ack(msg, result, now) {
    if (!Number.isInteger(msg.revision)) return; // e.g. a version.save ack
    const entry = this.pending.find((e) => e.client_op_id === msg.client_op_id);
    if (entry) {
      if (this.loaded && msg.revision <= this.revision) {
        // Already in the confirmed state (a duplicate ack after a resync).
        this.pending = this.pending.filter((e) => e !== entry);
        this.invalidate();
        result.changed = true;
      } else {
        entry.acked = msg.revision;
        entry.ackedAt = now;
      }
    }
    if (this.loaded && msg.revision > this.revision + 1) result.send.push(...this.requestSync(now));
  }

  /**
   * @param {Message} msg
   * @param {Outcome} result
   * @param {number} now
   */
  error(msg, result, now) {
    const entry = this.pending.find((e) => e.client_op_id === msg.client_op_id);
    if (!entry) return;
    if (msg.code === 'stale_revision') {
      entry.stale = true;
      result.send.push(...this.requestSync(now));
      return;
    }
    this.pending = this.pending.filter((e) => e !== entry);
    this.invalidate();
    result.changed = true;
    result.dropped = entry;
  }

  /**
   * Edits refused as stale go again on the state we now have.
   * @returns {Message[]}
   */
  resendStale() {
    /** @type {Message[]} */
    const out = [];
    for (const entry of this.pending) {
      if (!entry.stale) continue;
      entry.stale = false;
      entry.base_revision = this.revision;
      out.push(editMessage(entry));
    }
    return out;
  }
}
