import { api } from '../api.js';
import { errorBox, formatTime, h, loading, replace, stateBadge } from '../dom.js';
import { paths } from '../paths.js';

const PAGE = 50;

export async function namespacesPage(main) {
  document.title = 'Namespaces · Headwater';
  replace(main, h('h1', {}, 'Namespaces'), loading());
  try {
    const { namespaces } = await api.namespaces();
    replace(
      main,
      h('h1', {}, 'Namespaces'),
      h(
        'table',
        { class: 'list' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Namespace'), h('th', { scope: 'col' }, 'Owner'), h('th', { scope: 'col' }, 'Updated'))),
        h(
          'tbody',
          {},
          namespaces.map((n) =>
            h(
              'tr',
              {},
              h('td', {}, h('a', { href: paths.namespace(n.name) }, n.name), n.description ? h('div', { class: 'muted' }, n.description) : null),
              h('td', {}, n.ownerName),
              h('td', {}, formatTime(n.updatedAt)),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    replace(main, h('h1', {}, 'Namespaces'), errorBox(error));
  }
}

function pager(offset, total, onPage) {
  if (total <= PAGE) return null;
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: offset === 0, onclick: () => onPage(Math.max(0, offset - PAGE)) }, 'Previous'),
    h('span', {}, `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`),
    h('button', { type: 'button', disabled: offset + PAGE >= total, onclick: () => onPage(offset + PAGE) }, 'Next'),
  );
}

export async function namespacePage(main, namespace, query) {
  document.title = `${namespace} · Headwater`;
  const tab = query.get('tab') === 'datasets' ? 'datasets' : 'jobs';
  const body = h('div', {}, loading());
  const tabLink = (name, label) =>
    h('a', { href: paths.namespace(namespace, name === 'jobs' ? undefined : name), class: 'tab', 'aria-current': tab === name ? 'page' : null }, label);
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: paths.namespaces() }, 'Namespaces'), ' / '),
    h('h1', {}, namespace),
    h('nav', { class: 'tabs', 'aria-label': 'Jobs or datasets' }, tabLink('jobs', 'Jobs'), tabLink('datasets', 'Datasets')),
    body,
  );

  async function show(offset) {
    try {
      if (tab === 'jobs') {
        const { jobs, totalCount } = await api.jobs(namespace, { limit: PAGE, offset });
        replace(
          body,
          h(
            'table',
            { class: 'list' },
            h('thead', {}, h('tr', {}, ['Job', 'Type', 'Latest run', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              jobs.map((j) =>
                h(
                  'tr',
                  { class: j.latestRun?.state === 'FAILED' ? 'failed' : null },
                  h('td', {}, h('a', { href: paths.job(j.namespace, j.name) }, j.name)),
                  h('td', {}, j.type),
                  h('td', {}, j.latestRun ? stateBadge(j.latestRun.state) : '—'),
                  h('td', {}, formatTime(j.updatedAt)),
                ),
              ),
            ),
          ),
          jobs.length ? null : h('p', { class: 'muted' }, 'No jobs.'),
          pager(offset, totalCount, show),
        );
      } else {
        const { datasets, totalCount } = await api.datasets(namespace, { limit: PAGE, offset });
        replace(
          body,
          h(
            'table',
            { class: 'list' },
            h('thead', {}, h('tr', {}, ['Dataset', 'Source', 'Fields', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              datasets.map((d) =>
                h(
                  'tr',
                  {},
                  h('td', {}, h('a', { href: paths.dataset(d.namespace, d.name) }, d.name)),
                  h('td', {}, d.sourceName || '—'),
                  h('td', {}, String(d.fields.length)),
                  h('td', {}, formatTime(d.updatedAt)),
                ),
              ),
            ),
          ),
          datasets.length ? null : h('p', { class: 'muted' }, 'No datasets.'),
          pager(offset, totalCount, show),
        );
      }
    } catch (error) {
      replace(body, errorBox(error));
    }
  }
  show(0);
}
