// The latency read-out: round trips to the server. Pure; runs under node.

/**
 * Keeps the last few round-trip times and reports their median, so one slow
 * answer does not make the read-out jump.
 */
export class RoundTrips {
  /** @param {number} [size] */
  constructor(size = 9) {
    this.size = size;
    /** @type {number[]} */
    this.values = [];
  }

  /** @param {number} ms */
  add(ms) {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.values.push(ms);
    if (this.values.length > this.size) this.values.shift();
  }

  /** @returns {number | null} */
  median() {
    if (this.values.length === 0) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
}

/**
 * @param {{ socketMs: number | null, mediaMs?: number | null }} rtt
 * @returns {string}
 */
export function formatLatency({ socketMs, mediaMs = null }) {
  if (socketMs == null && mediaMs == null) return 'Round trip to the server: measuring…';
  const parts = [];
  if (mediaMs != null) parts.push(`audio ${Math.round(mediaMs)} ms`);
  if (socketMs != null) parts.push(`signalling ${Math.round(socketMs)} ms`);
  return `Round trip to the server: ${parts.join(', ')}`;
}

/**
 * The selected candidate pair's round trip from RTCPeerConnection.getStats(),
 * in milliseconds, or null while there is none.
 * @param {Iterable<any>} reports the values of an RTCStatsReport
 * @returns {number | null}
 */
export function mediaRoundTripMs(reports) {
  /** @type {Map<string, any>} */
  const byId = new Map();
  for (const r of reports) byId.set(r.id, r);
  let pair = null;
  for (const r of byId.values()) {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = byId.get(r.selectedCandidatePairId);
  }
  if (!pair) {
    for (const r of byId.values()) {
      if (r.type === 'candidate-pair' && r.state === 'succeeded' && (r.nominated || r.selected)) pair = r;
    }
  }
  const seconds = pair?.currentRoundTripTime;
  return typeof seconds === 'number' && Number.isFinite(seconds) ? seconds * 1000 : null;
}
