// The REST API client: JSON in and out, session cookie + CSRF header, and one
// error type carrying the server's message so the page can show it verbatim.

/**
 * @typedef {'owner' | 'editor' | 'viewer'} Role
 *
 * @typedef {object} Project
 * @property {number} id
 * @property {string} name
 * @property {number} sample_rate
 * @property {number} tempo_bpm
 * @property {[number, number]} time_signature
 * @property {number} revision
 * @property {string} created_at
 * @property {string} updated_at
 * @property {Role} [role] only on REST answers, not on broadcast events
 *
 * @typedef {object} Stem
 * @property {number} id
 * @property {number} project_id
 * @property {string} name
 * @property {string} original_filename
 * @property {string} format
 * @property {string} subtype
 * @property {number} sample_rate
 * @property {number} channels
 * @property {number} frames
 * @property {number} duration_s
 * @property {number} size
 * @property {string} sha256
 * @property {string | null} uploader
 * @property {string} created_at
 * @property {'analysing' | 'ready' | 'failed'} status
 * @property {number} progress
 * @property {string} error
 * @property {number | null} integrated_lufs
 * @property {number | null} true_peak_dbtp
 * @property {number | null} sample_peak_dbfs
 * @property {string} download_url
 * @property {string | null} peaks_url
 * @property {string | null} preview_url
 *
 * @typedef {object} Member
 * @property {number} user_id
 * @property {string} username
 * @property {Role} role
 * @property {string} joined_at
 *
 * @typedef {object} ShareLink
 * @property {number} id
 * @property {Role} role
 * @property {string} token
 * @property {string} url path only; prefix the origin to share it
 * @property {string} created_at
 * @property {string} expires_at
 * @property {boolean} revoked
 */

export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status HTTP status, 0 when the server was not reached
   * @param {string} [code] the server's error code, when it sent one
   */
  constructor(message, status, code) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/**
 * The message to show for a failed response. The API always answers
 * {"error": {"code", "message"}}, but a proxy in front of it (413 from nginx)
 * or Django's own CSRF page answers HTML, so fall back to the status.
 * @param {number} status
 * @param {string} bodyText
 * @returns {{ message: string, code?: string }}
 */
export function parseError(status, bodyText) {
  try {
    const body = JSON.parse(bodyText);
    const error = body && body.error;
    if (error && typeof error.message === 'string' && error.message) {
      return { message: error.message, code: typeof error.code === 'string' ? error.code : undefined };
    }
    if (body && typeof body.detail === 'string') return { message: body.detail };
  } catch {
    // not JSON: use the fallbacks below
  }
  if (status === 0) return { message: 'Could not reach the server. Check your connection and try again.' };
  if (status === 413) return { message: 'The file is too large for the server to accept.' };
  if (status === 403) return { message: 'You are not allowed to do this (your session may have expired: reload the page).' };
  return { message: `The server answered with an error (HTTP ${status}).` };
}

/**
 * Django's CSRF token: the `csrftoken` cookie, or the hidden form field any
 * page with a {% csrf_token %} form carries (when the cookie is HttpOnly).
 * @param {string} [cookies]
 */
export function csrfToken(cookies = typeof document === 'undefined' ? '' : document.cookie) {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === 'csrftoken') {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  if (typeof document !== 'undefined') {
    const input = document.querySelector('input[name=csrfmiddlewaretoken]');
    if (input instanceof HTMLInputElement) return input.value;
  }
  return '';
}

/**
 * @param {'GET' | 'POST' | 'PATCH' | 'DELETE'} method
 * @param {string} url
 * @param {unknown} [body] sent as JSON
 * @returns {Promise<any>} parsed JSON, or null for 204 No Content
 */
export async function request(method, url, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRFToken'] = csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    const { message } = parseError(0, '');
    throw new ApiError(message, 0);
  }
  const text = await response.text();
  if (!response.ok) {
    const { message, code } = parseError(response.status, text);
    throw new ApiError(message, response.status, code);
  }
  return text ? JSON.parse(text) : null;
}

export const api = {
  /** @param {string} url */
  get: (url) => request('GET', url),
  /** @param {string} url @param {unknown} body */
  post: (url, body) => request('POST', url, body),
  /** @param {string} url @param {unknown} body */
  patch: (url, body) => request('PATCH', url, body),
  /** @param {string} url */
  delete: (url) => request('DELETE', url),
};

/**
 * Upload one file as multipart field `file` (plus optional `name`). fetch()
 * cannot report upload progress, hence XMLHttpRequest.
 *
 * @param {string} url
 * @param {File} file
 * @param {string | null | undefined} name
 * @param {(fraction: number) => void} [onProgress] 0..1 of the bytes sent
 * @param {AbortSignal} [signal]
 * @returns {Promise<Stem>}
 */
export function uploadWithProgress(url, file, name, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('file', file, file.name);
    if (name) form.append('name', name);

    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-CSRFToken', csrfToken());
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0 && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError('The server sent an unreadable answer.', xhr.status));
        }
        return;
      }
      const { message, code } = parseError(xhr.status, xhr.responseText);
      reject(new ApiError(message, xhr.status, code));
    };
    // A server refusing a large body may reset the connection before the
    // browser sees its 413, which surfaces here as a network error.
    xhr.onerror = () => reject(new ApiError('The upload failed: the connection was lost or the server refused the file.', 0));
    xhr.onabort = () => reject(new ApiError('The upload was cancelled.', 0, 'aborted'));
    if (signal) {
      if (signal.aborted) {
        reject(new ApiError('The upload was cancelled.', 0, 'aborted'));
        return;
      }
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    xhr.send(form);
  });
}
