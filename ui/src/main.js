// The single-page app: one router over the history API, so every page has a URL that survives a reload.
import './style.css';
import { h, replace } from './dom.js';
import { segments } from './paths.js';
import { mountSearch } from './search.js';
import { homePage } from './pages/home.js';
import { namespacesPage, namespacePage } from './pages/browse.js';
import { jobPage } from './pages/job.js';
import { datasetPage } from './pages/dataset.js';
import { runPage } from './pages/run.js';
import { lineagePage } from './pages/lineage.js';
import { backfillsPage, newBackfillPage, savedBackfillPage } from './pages/backfills.js';

const main = document.getElementById('main');
let cleanup = null;

function route(parts) {
  const [first, second, third] = parts;
  if (parts.length === 0) return () => homePage(main);
  if (first === 'namespaces' && parts.length === 1) return () => namespacesPage(main);
  if (first === 'namespaces' && parts.length === 2) return (query) => namespacePage(main, second, query);
  if (first === 'jobs' && parts.length === 3) return () => jobPage(main, second, third);
  if (first === 'datasets' && parts.length === 3) return () => datasetPage(main, second, third);
  if (first === 'runs' && parts.length === 2) return () => runPage(main, second);
  if (first === 'lineage' && parts.length === 1) return (query) => lineagePage(main, query);
  if (first === 'backfills' && parts.length === 1) return () => backfillsPage(main);
  if (first === 'backfills' && second === 'new' && parts.length === 2) return (query) => newBackfillPage(main, query);
  if (first === 'backfills' && parts.length === 2) return () => savedBackfillPage(main, second);
  return null;
}

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  let parts;
  try {
    parts = segments(window.location.pathname);
  } catch {
    parts = null;
  }
  const page = parts && route(parts);
  document.querySelectorAll('header nav a').forEach((a) => {
    const here = a.getAttribute('href') === '/' ? parts?.length === 0 : parts?.[0] === a.getAttribute('href').slice(1);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!page) {
    document.title = 'Not found · Headwater';
    replace(main, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/' }, 'Back to the incidents')));
    return;
  }
  const result = await page(new URLSearchParams(window.location.search));
  if (typeof result === 'function') cleanup = result;
}

export function navigate(url, { replace: replaceState = false } = {}) {
  if (replaceState) window.history.replaceState({}, '', url);
  else window.history.pushState({}, '', url);
  window.scrollTo(0, 0);
  render().then(() => main.focus({ preventScroll: true }));
}
window.addEventListener('headwater:navigate', (event) => navigate(event.detail.url, event.detail));

// Same-origin links navigate inside the app (a modified click still opens a new tab as usual).
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, window.location.href);
  if (url.origin !== window.location.origin || url.pathname.startsWith('/api/') || url.pathname === '/docs') return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener('popstate', () => render());
mountSearch(document.getElementById('search'));
render();
