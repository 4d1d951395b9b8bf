import { api, nodeId } from '../api.js';
import { errorBox, formatTime, h, loading, replace } from '../dom.js';
import { columnLineagePanel } from '../columns.js';
import { facetSections, owners } from '../facets.js';
import { paths } from '../paths.js';

export function schemaTable(fields) {
  if (!fields.length) return h('p', { class: 'muted' }, 'No schema recorded.');
  return h(
    'table',
    { class: 'list schema' },
    h('thead', {}, h('tr', {}, ['Column', 'Type', 'Description', 'Tags'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, fields.map((f) => h('tr', {}, h('td', { class: 'mono' }, f.name), h('td', {}, f.type || '—'), h('td', {}, f.description || ''), h('td', {}, f.tags.join(', '))))),
  );
}

export function versionsList(namespace, name, versions, current, { compact = false } = {}) {
  if (!versions.length) return h('p', { class: 'muted' }, 'No versions.');
  const head = compact ? ['Version', 'Created', 'Written by run', ''] : ['Version', 'Created', 'Written by run', 'Fields', ''];
  return h(
    'table',
    { class: 'list versions' },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      versions.map((v) =>
        h(
          'tr',
          {},
          h('td', { class: 'mono' }, v.version.slice(0, 8), v.version === current ? h('span', { class: 'tag' }, 'current') : null),
          h('td', {}, formatTime(v.createdAt)),
          h('td', {}, v.createdByRun ? h('a', { href: paths.run(v.createdByRun.id), class: 'mono' }, `${v.createdByRun.id.slice(0, 8)} (${v.createdByRun.state})`) : '—'),
          compact ? null : h('td', {}, String(v.fields.length)),
          h('td', {}, h('a', { href: paths.newBackfill({ datasetNamespace: namespace, dataset: name, version: v.version }) }, 'Plan backfill')),
        ),
      ),
    ),
  );
}

export async function datasetPage(main, namespace, name) {
  document.title = `${name} · Headwater`;
  replace(main, loading());
  let dataset;
  try {
    dataset = await api.dataset(namespace, name);
  } catch (error) {
    replace(main, h('h1', {}, name), errorBox(error));
    return;
  }
  const versions = h('div', {}, loading());
  const datasetOwners = owners(dataset.facets);
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: paths.namespaces() }, 'Namespaces'), ' / ', h('a', { href: paths.namespace(namespace, 'datasets') }, namespace), ' / '),
    h('h1', {}, h('span', { class: 'kind kind-dataset' }, 'Dataset'), ' ', dataset.name),
    h('p', { class: 'meta' }, `Source ${dataset.sourceName || '—'} · updated ${formatTime(dataset.updatedAt)}`, datasetOwners.length ? ` · owned by ${datasetOwners.join(', ')}` : ''),
    dataset.description ? h('p', {}, dataset.description) : null,
    h('p', { class: 'actions' }, h('a', { class: 'button', href: paths.lineage(nodeId('dataset', namespace, name)) }, 'Lineage')),
    h('h2', {}, 'Schema'),
    schemaTable(dataset.fields),
    h('h2', {}, 'Column lineage'),
    columnLineagePanel(namespace, name, dataset.fields, { idPrefix: 'page-cl' }),
    h('h2', {}, 'Versions'),
    versions,
    h('h2', {}, 'Facets'),
    facetSections(dataset.facets),
  );
  try {
    const page = await api.datasetVersions(namespace, name, { limit: 20 });
    replace(versions, h('p', { class: 'muted' }, `${page.totalCount} versions`), versionsList(namespace, name, page.versions, dataset.currentVersion));
  } catch (error) {
    replace(versions, errorBox(error));
  }
}
