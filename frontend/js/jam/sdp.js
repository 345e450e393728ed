// SDP helpers for the jam page. Pure string work; runs under node.

/**
 * Ask to receive stereo Opus. Chrome decodes a stereo stream as stereo only
 * when its own description says `stereo=1` on the Opus format; the server
 * pans players in each personal mix, so without it pans would collapse to
 * mono.
 * @param {string} sdp
 * @returns {string}
 */
export function preferStereoOpus(sdp) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(eol);
  /** @type {Set<string>} */
  const opus = new Set();
  for (const line of lines) {
    const m = /^a=rtpmap:(\d+) opus\/48000(\/2)?$/i.exec(line);
    if (m) opus.add(m[1]);
  }
  if (opus.size === 0) return sdp;
  /** @type {Set<string>} */
  const withFmtp = new Set();
  const out = lines.map((line) => {
    const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (!m || !opus.has(m[1])) return line;
    withFmtp.add(m[1]);
    const params = m[2].split(';').map((p) => p.trim()).filter((p) => p && !/^stereo=/.test(p));
    return `a=fmtp:${m[1]} ${[...params, 'stereo=1'].join(';')}`;
  });
  // A format without any fmtp line gets one right after its rtpmap.
  const result = [];
  for (const line of out) {
    result.push(line);
    const m = /^a=rtpmap:(\d+) opus\//i.exec(line);
    if (m && !withFmtp.has(m[1])) result.push(`a=fmtp:${m[1]} stereo=1`);
  }
  return result.join(eol);
}

/**
 * The addresses of the ICE candidates in a description (to tell a user whose
 * browser offered none that the connection cannot work).
 * @param {string} sdp
 * @returns {string[]}
 */
export function candidateAddresses(sdp) {
  return sdp
    .split(/\r?\n/)
    .filter((line) => line.startsWith('a=candidate:'))
    .map((line) => line.split(' ')[4])
    .filter((address) => typeof address === 'string');
}
