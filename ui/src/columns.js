// Column lineage of one field: where its values come from and where they go (GET /api/v1/column-lineage).
import { api } from './api.js';
import { errorBox, h, loading, replace } from './dom.js';
import { paths } from './paths.js';

function walk(byId, start, next) {
  const seen = new Set([start]);
  const order = [];
  let frontier = [start];
  let hop = 0;
  while (frontier.length) {
    hop += 1;
    const following = [];
    for (const id of frontier) {
      for (const target of next(byId.get(id))) {
        if (seen.has(target) || !byId.has(target)) continue;
        seen.add(target);
        order.push({ node: byId.get(target), hop });
        following.push(target);
      }
    }
    frontier = following;
  }
  return order;
}

function fieldList(entries, empty) {
  if (!entries.length) return h('p', { class: 'muted' }, empty);
  return h(
    'ul',
    { class: 'column-lineage-list' },
    entries.map(({ node, hop }) =>
      h(
        'li',
        { dataset: { fieldId: node.id } },
        h('span', { class: 'hop' }, `${hop} hop${hop === 1 ? '' : 's'}`),
        ' ',
        h('a', { href: paths.dataset(node.data.namespace, node.data.dataset) }, node.data.dataset),
        '.',
        h('strong', {}, node.data.field),
        node.data.transformationType ? h('span', { class: 'muted' }, ` (${node.data.transformationType}${node.data.transformationDescription ? `: ${node.data.transformationDescription}` : ''})`) : null,
      ),
    ),
  );
}

export function columnLineagePanel(namespace, dataset, fields, { idPrefix = 'cl' } = {}) {
  const result = h('div', { class: 'column-lineage-result', 'aria-live': 'polite' });
  if (!fields.length) return h('p', { class: 'muted' }, 'No schema: no columns to trace.');
  const select = h('select', { id: `${idPrefix}-field` }, fields.map((f) => h('option', { value: f.name }, f.name)));
  async function show() {
    const field = select.value;
    replace(result, loading());
    try {
      const start = `datasetField:${namespace}:${dataset}:${field}`;
      const { graph } = await api.columnLineage(start, { withDownstream: true });
      const byId = new Map(graph.map((n) => [n.id, n]));
      const upstream = walk(byId, start, (n) => (n?.inEdges || []).map((e) => e.destination));
      const downstream = walk(byId, start, (n) => (n?.outEdges || []).map((e) => e.destination));
      replace(
        result,
        h('h4', {}, `Upstream of ${field}`),
        fieldList(upstream, 'No upstream columns recorded.'),
        h('h4', {}, `Downstream of ${field}`),
        fieldList(downstream, 'No downstream columns recorded.'),
      );
    } catch (error) {
      replace(result, errorBox(error));
    }
  }
  return h(
    'div',
    { class: 'column-lineage' },
    h(
      'div',
      { class: 'inline-form' },
      h('label', { for: `${idPrefix}-field` }, 'Column'),
      select,
      h('button', { type: 'button', onclick: show }, 'Show column lineage'),
    ),
    result,
  );
}
