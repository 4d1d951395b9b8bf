// Facets shown the way people read them: SQL highlighted, owners, documentation, data quality, errors;
// any other facet as JSON under a disclosure.
import hljs from 'highlight.js/lib/core';
import sql from 'highlight.js/lib/languages/sql';
import 'highlight.js/styles/github.css';
import { h } from './dom.js';

hljs.registerLanguage('sql', sql);

export function sqlBlock(query) {
  const code = h('code', { class: 'hljs language-sql' });
  code.innerHTML = hljs.highlight(query, { language: 'sql', ignoreIllegals: true }).value; // escaped by hljs
  return h('pre', { class: 'sql' }, code);
}

export function owners(facets) {
  return (facets?.ownership?.owners || []).map((o) => (o.type ? `${o.name} (${o.type})` : o.name));
}

function table(head, rows) {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))),
  );
}

const RENDERERS = {
  sql: (f) => [h('h4', {}, `SQL${f.dialect ? ` (${f.dialect})` : ''}`), sqlBlock(f.query || '')],
  ownership: (f) => [h('h4', {}, 'Owners'), h('ul', { class: 'owners' }, (f.owners || []).map((o) => h('li', {}, o.type ? `${o.name} (${o.type})` : o.name)))],
  documentation: (f) => [h('h4', {}, 'Documentation'), h('p', { class: 'doc' }, f.description || '')],
  sourceCodeLocation: (f) => [
    h('h4', {}, 'Source code'),
    h('p', {}, f.url ? h('a', { href: f.url, target: '_blank', rel: 'noopener' }, f.url) : f.path || ''),
  ],
  sourceCode: (f) => [h('h4', {}, `Source (${f.language || 'code'})`), h('pre', { class: 'code' }, f.sourceCode || '')],
  errorMessage: (f) => [
    h('h4', {}, 'Error'),
    h('p', { class: 'error-message' }, f.message || ''),
    f.stackTrace ? h('details', {}, h('summary', {}, 'Stack trace'), h('pre', { class: 'code' }, f.stackTrace)) : null,
  ],
  dataQualityMetrics: (f) => [
    h('h4', {}, 'Data quality metrics'),
    h('p', {}, `Rows: ${f.rowCount ?? '—'} · Bytes: ${f.bytes ?? '—'}${f.fileCount !== undefined ? ` · Files: ${f.fileCount}` : ''}`),
    f.columnMetrics
      ? table(
          ['Column', 'Nulls', 'Distinct', 'Min', 'Max'],
          Object.entries(f.columnMetrics).map(([column, m]) => [column, m.nullCount ?? '—', m.distinctCount ?? '—', m.min ?? '—', m.max ?? '—']),
        )
      : null,
  ],
  dataQualityAssertions: (f) => [
    h('h4', {}, 'Data quality assertions'),
    table(
      ['Assertion', 'Column', 'Result'],
      (f.assertions || []).map((a) => [
        a.assertion,
        a.column || '—',
        h('span', { class: a.success ? 'state state-completed' : 'state state-failed' }, a.success ? 'passed' : 'failed'),
      ]),
    ),
  ],
};

const HIDDEN = new Set(['schema', 'columnLineage', 'dataSource']); // shown elsewhere on the page

export function facetSections(facets) {
  const known = [];
  const other = [];
  for (const [name, facet] of Object.entries(facets || {})) {
    if (HIDDEN.has(name) || !facet || typeof facet !== 'object') continue;
    const render = RENDERERS[name];
    if (render) known.push(h('section', { class: `facet facet-${name}` }, render(facet)));
    else other.push(h('details', { class: 'facet-json' }, h('summary', {}, name), h('pre', { class: 'code' }, JSON.stringify(facet, null, 2))));
  }
  if (!known.length && !other.length) return [h('p', { class: 'muted' }, 'No facets.')];
  return [...known, other.length ? h('section', { class: 'facet' }, h('h4', {}, 'Other facets'), other) : null];
}

const QUALITY = ['dataQualityAssertions', 'dataQualityMetrics', 'inputStatistics'];
RENDERERS.inputStatistics = (f) => [h('h4', {}, 'Input statistics'), h('p', {}, `Rows: ${f.rowCount ?? '—'} · Bytes: ${f.size ?? '—'}`)];

// Data-quality facets only: OpenLineage sends them as input facets, on the run that read (tested) a dataset.
export function qualitySections(facets) {
  return QUALITY.filter((name) => facets?.[name]).map((name) => h('section', { class: `facet facet-${name}` }, RENDERERS[name](facets[name])));
}
