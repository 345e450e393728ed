// A tiny element builder. Text always goes in as text nodes, so names and
// messages from the server can never inject markup.

/** @typedef {Node | string | number | null | undefined | false} Child */

// Set as properties (live state); everything else is an attribute.
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'defaultValue']);

/**
 * h('button', { class: 'danger', onclick: fn, 'aria-label': 'Delete' }, 'Delete')
 *
 * Props: `class`; `dataset` (object); `on<event>` functions become listeners;
 * true/false/null toggle boolean attributes; a few live properties
 * (value, checked, disabled, ...) are set after children, so a <select>'s
 * value can name one of its options.
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  append(el, children);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) /** @type {any} */ (el)[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  return el;
}

/**
 * @param {Element} el
 * @param {(Child | Child[])[]} children
 */
export function append(el, children) {
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replace an element's children.
 * @param {Element} el
 * @param {...(Child | Child[])} children
 */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Show (or with null, remove) the error message of a form or section: a
 * single `.error[role=alert]` element right after `anchor`, so screen readers
 * announce it and tests can find it.
 * @param {Element} anchor
 * @param {string | null} message
 */
export function showError(anchor, message) {
  let next = anchor.nextElementSibling;
  if (!(next instanceof HTMLElement && next.dataset.errorFor === 'anchor')) next = null;
  if (message == null) {
    next?.remove();
    return;
  }
  if (!next) {
    next = h('p', { class: 'error', role: 'alert', dataset: { errorFor: 'anchor' } });
    anchor.after(next);
  }
  next.textContent = message;
}

/**
 * The message to show for a caught error.
 * @param {unknown} err
 */
export function messageOf(err) {
  return err instanceof Error && err.message ? err.message : 'Something went wrong.';
}

/**
 * A local date and time for an ISO timestamp, inside <time datetime>.
 * @param {string} iso
 */
export function timeElement(iso) {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return h('time', { datetime: iso, title: iso }, text);
}
