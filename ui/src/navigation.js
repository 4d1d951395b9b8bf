// Pages navigate through an event so they need not import the router (which imports them).
export function go(url, options = {}) {
  window.dispatchEvent(new CustomEvent('headwater:navigate', { detail: { url, ...options } }));
}
