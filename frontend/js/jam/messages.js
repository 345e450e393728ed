// What the jam page says to people. Pure; runs under node.

/**
 * A clear message for a getUserMedia failure.
 * @param {unknown} err
 * @returns {string}
 */
export function micErrorMessage(err) {
  const name = err && typeof err === 'object' && 'name' in err ? String(err.name) : '';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was refused. Allow this site to use the microphone (in the address bar or the browser settings), then join again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Connect one, then join again.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone is busy or failed to start (another application may be using it).';
    case 'TypeError':
      return 'This page cannot use the microphone here: open it over HTTPS (or on localhost).';
    default:
      return 'The microphone could not be opened.';
  }
}

/**
 * A clear message for a jam error from the server.
 * @param {string} code
 * @param {string} message the server's own text
 * @returns {string}
 */
export function jamErrorMessage(code, message) {
  switch (code) {
    case 'room_full':
      return `${message} Try again when someone leaves.`;
    case 'server_full':
      return `${message}`;
    case 'forbidden':
      return `Not allowed: ${message}.`;
    case 'not_joined':
      return 'Join the jam first.';
    case 'jam_failed':
      return `The jam failed: ${message}.`;
    case 'rate_limited':
      return 'Too many changes at once; slow down a little.';
    default:
      return message || 'Something went wrong.';
  }
}

/**
 * Why we are out of the room, or null when we left on purpose.
 * @param {string | null | undefined} reason
 */
export function leftMessage(reason) {
  if (!reason || reason === 'left') return null;
  return `You are out of the jam: ${reason}. Join again to continue.`;
}

/**
 * @typedef {{ participant: string, user: { id: number, name: string, colour: string } }} Player
 */

/**
 * Players for display: me first, then everyone else in roster order.
 * @param {Player[]} players
 * @param {string | null} me my participant id
 * @returns {(Player & { isMe: boolean })[]}
 */
export function orderedPlayers(players, me) {
  const mine = players.filter((p) => p.participant === me).map((p) => ({ ...p, isMe: true }));
  const others = players.filter((p) => p.participant !== me).map((p) => ({ ...p, isMe: false }));
  return [...mine, ...others];
}

/**
 * The recording line under the record button.
 * @param {{ state: string, by?: { name: string }, count_in_bars?: number, stems?: number[], message?: string } | null} event
 * @returns {string}
 */
export function recordingMessage(event) {
  if (!event) return 'Not recording.';
  const who = event.by?.name ? ` (${event.by.name})` : '';
  switch (event.state) {
    case 'recording':
      return event.count_in_bars
        ? `Counting in ${event.count_in_bars} bar${event.count_in_bars > 1 ? 's' : ''}, then recording${who}…`
        : `Recording${who}…`;
    case 'saving':
      return 'Saving the takes…';
    case 'saved': {
      const n = event.stems?.length ?? 0;
      if (n === 0) return 'Nothing was recorded.';
      return `Saved ${n} take${n > 1 ? 's' : ''} as new tracks of the project.`;
    }
    case 'failed':
      return event.message || 'The takes could not be saved.';
    default:
      return 'Not recording.';
  }
}

/**
 * Calls `send` at most once per `intervalMs`, always delivering the latest
 * value: a trailing call follows the last one dropped.
 * @template T
 * @param {number} intervalMs
 * @param {(value: T) => void} send
 * @param {{ now?: () => number, setTimer?: (fn: () => void, ms: number) => unknown }} [clock]
 * @returns {(value: T) => void}
 */
export function throttleLatest(intervalMs, send, clock = {}) {
  const now = clock.now ?? (() => Date.now());
  const setTimer = clock.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  let last = -Infinity;
  let pending = false;
  /** @type {T} */
  let latest;
  const flush = () => {
    pending = false;
    last = now();
    send(latest);
  };
  return (value) => {
    latest = value;
    const wait = last + intervalMs - now();
    if (wait <= 0 && !pending) {
      flush();
    } else if (!pending) {
      pending = true;
      setTimer(flush, Math.max(0, wait));
    }
  };
}
