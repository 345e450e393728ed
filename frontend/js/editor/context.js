// What every part of the editor page is given by editor-page.js. Types only:
// the parts never import each other, they talk through this.

/**
 * @typedef {import('./state.js').DocState} DocState
 * @typedef {import('./state.js').Op} Op
 * @typedef {import('./state.js').Message} Message
 * @typedef {import('../api.js').Stem} Stem
 * @typedef {import('../api.js').Role} Role
 * @typedef {import('./presence.js').PresenceBook} PresenceBook
 * @typedef {import('./gestures.js').GestureOverlay} GestureOverlay
 *
 * @typedef {object} EditorContext
 * @property {number} projectId
 * @property {string} apiBase "/api/projects/<id>"
 * @property {{ id: number, username: string }} me
 * @property {() => DocState} doc what to show: the live state with others' gestures, or a version under preview
 * @property {() => DocState} live the live state (comments always show it, even under a preview)
 * @property {() => boolean} loaded the document has arrived
 * @property {() => boolean} canEdit may change the document now (editor or owner, not previewing)
 * @property {() => boolean} canComment
 * @property {() => Role} role
 * @property {() => string} newId a fresh object id
 * @property {(ops: Op[]) => void} edit propose an edit (shown at once, sent, kept until confirmed)
 * @property {(msg: Message) => boolean} send any other message; false when not connected
 * @property {Map<number, Stem>} stems by id, in the server's order
 * @property {(stemId: number | null) => number | null} sourceLength seconds, when known
 * @property {(message: string | null) => void} showError the page's alert, or null to clear it
 * @property {() => number} pxPerSecond
 * @property {() => Set<string>} selection clip ids
 * @property {(ids: Iterable<string>) => void} select
 * @property {() => number} playhead seconds
 * @property {(t: number) => void} setPlayhead
 * @property {(commentId: string) => void} focusComment
 * @property {PresenceBook} presence
 * @property {GestureOverlay} gestures
 * @property {() => void} changed something only this page knows changed (zoom, selection): render again
 */

export {};
