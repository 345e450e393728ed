// Keyed list updates: reuse each item's element across renders, so focus,
// a half-typed reply or a fader under the mouse survive others' edits.

/** @type {WeakMap<Element, string>} */
const keys = new WeakMap();

/**
 * Make `container`'s children the elements for `items`, in order. Elements
 * are created once per key, updated on every call, and moved only when out
 * of place (moving a focused element would blur it).
 *
 * @template T
 * @template {HTMLElement} E
 * @param {Element} container
 * @param {T[]} items
 * @param {(item: T) => string} keyOf
 * @param {(item: T) => E} create
 * @param {(el: E, item: T) => void} update
 */
export function reconcile(container, items, keyOf, create, update) {
  /** @type {Map<string, E>} */
  const existing = new Map();
  for (const child of [...container.children]) {
    const key = keys.get(child);
    if (key === undefined) child.remove();
    else existing.set(key, /** @type {E} */ (child));
  }
  /** @type {Element | null} */
  let cursor = container.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      keys.set(el, key);
    }
    update(el, item);
    if (el === cursor) cursor = cursor.nextElementSibling;
    else container.insertBefore(el, cursor);
  }
  for (const el of existing.values()) el.remove();
}
