// Who is here (docs/protocol.md §6): each open session with its user's
// colour, selection and playhead. The book is pure; renderPresence draws it.

import { h, replaceChildren } from '../dom.js';
import { formatTime } from './clipmath.js';

/**
 * @typedef {{ id: number, name: string, colour: string }} PresenceUser
 *
 * @typedef {object} Presence
 * @property {string} session
 * @property {PresenceUser} user
 * @property {string[]} selection
 * @property {number | null} playhead
 * @property {boolean} self
 */

const FALLBACK_COLOUR = '#8d94a5';

/** @param {unknown} user @returns {PresenceUser} */
function readUser(user) {
  const u = /** @type {Record<string, any>} */ (user && typeof user === 'object' ? user : {});
  return {
    id: typeof u.id === 'number' ? u.id : 0,
    name: typeof u.name === 'string' ? u.name : 'someone',
    // Only a plain hex colour goes into a style attribute.
    colour: typeof u.colour === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(u.colour) ? u.colour : FALLBACK_COLOUR,
  };
}

export class PresenceBook {
  constructor() {
    /** @type {Map<string, Presence>} */
    this.sessions = new Map();
    /** @type {string | null} */
    this.selfSession = null;
  }

  /**
   * Our own session, from `hello`. Everyone else's entries are dropped: the
   * server sends a fresh `presence` for every open session after a connect,
   * and sessions that closed while we were away would otherwise linger.
   * @param {string} session
   * @param {unknown} user
   * @param {{ selection: string[], playhead: number | null }} mine
   */
  connected(session, user, mine) {
    this.sessions.clear();
    this.selfSession = session;
    this.sessions.set(session, { session, user: readUser(user), selection: [...mine.selection], playhead: mine.playhead, self: true });
  }

  /**
   * Our own selection and playhead, so the list shows them like anyone's.
   * @param {{ selection?: string[], playhead?: number | null }} mine
   */
  updateSelf(mine) {
    const me = this.selfSession ? this.sessions.get(this.selfSession) : undefined;
    if (!me) return;
    if (mine.selection) me.selection = [...mine.selection];
    if (mine.playhead !== undefined) me.playhead = mine.playhead;
  }

  /**
   * A `presence` or `presence.leave` message.
   * @param {{ type: string, [key: string]: any }} msg
   * @returns {boolean} whether anything changed
   */
  receive(msg) {
    const session = msg.session;
    if (typeof session !== 'string' || session === this.selfSession) return false;
    if (msg.type === 'presence.leave') return this.sessions.delete(session);
    if (msg.type !== 'presence') return false;
    const old = this.sessions.get(session);
    // A field left out keeps its last value (§6).
    this.sessions.set(session, {
      session,
      user: msg.user ? readUser(msg.user) : old?.user ?? readUser(null),
      selection: Array.isArray(msg.selection) ? msg.selection.filter((/** @type {unknown} */ x) => typeof x === 'string') : old?.selection ?? [],
      playhead: typeof msg.playhead === 'number' && Number.isFinite(msg.playhead) ? msg.playhead : msg.playhead === null ? null : old?.playhead ?? null,
      self: false,
    });
    return true;
  }

  /** Everyone, ourselves first, then by name. */
  all() {
    return [...this.sessions.values()].sort((a, b) => Number(b.self) - Number(a.self) || a.user.name.localeCompare(b.user.name) || (a.session < b.session ? -1 : 1));
  }

  others() {
    return this.all().filter((p) => !p.self);
  }

  /**
   * Others who have this object selected.
   * @param {string} id
   */
  selectedBy(id) {
    return this.others().filter((p) => p.selection.includes(id));
  }
}

/**
 * @param {HTMLElement} list the #presence-list
 * @param {PresenceBook} book
 */
export function renderPresence(list, book) {
  replaceChildren(
    list,
    book.all().map((p) =>
      h(
        'li',
        { class: 'presence', dataset: { session: p.session, userId: String(p.user.id), self: String(p.self) }, style: `--who: ${p.user.colour}` },
        h('span', { class: 'presence-swatch', 'aria-hidden': 'true' }),
        h('span', { class: 'presence-name' }, p.user.name, p.self && h('span', { class: 'muted' }, ' (you)')),
        p.playhead != null && h('span', { class: 'presence-playhead muted', title: 'Playhead' }, formatTime(p.playhead)),
        p.selection.length > 0 && h('span', { class: 'presence-selection muted' }, `${p.selection.length} selected`),
      ),
    ),
  );
}
