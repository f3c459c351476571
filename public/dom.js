/**
 * dom.js: finding index.html's elements. Each module of the page takes the ones it draws in when
 * it loads, so a missing one stops the page at once with its id.
 */

/**
 * @template {HTMLElement} [E=HTMLElement]
 * @param {string} id
 * @returns {E}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`Cannot start the page: #${id} is missing from index.html`);
  return /** @type {E} */ (element);
}
