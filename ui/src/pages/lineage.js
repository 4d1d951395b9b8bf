import { api } from '../api.js';
import { errorBox, formatDuration, formatTime, h, loading, replace, stateBadge } from '../dom.js';
import { columnLineagePanel } from '../columns.js';
import { facetSections, qualitySections } from '../facets.js';
import { LINEAGE_LEGEND, drawGraph } from '../graph.js';
import { go } from '../navigation.js';
import { paths } from '../paths.js';
import { schemaTable, versionsList } from './dataset.js';

const MAX_NODES = 2000;

function depthParam(query, key) {
  const value = Number.parseInt(query.get(key) ?? '2', 10);
  return Number.isFinite(value) && value >= 0 ? Math.min(value, 50) : 2;
}

// Upstream and downstream are walked separately, each to its own depth, and drawn as one graph.
async function loadGraph(nodeId, up, down) {
  const [upstream, downstream] = await Promise.all([
    api.lineage(nodeId, { depth: up, direction: 'upstream', maxNodes: MAX_NODES }),
    api.lineage(nodeId, { depth: down, direction: 'downstream', maxNodes: MAX_NODES }),
  ]);
  const byId = new Map();
  const edges = new Map();
  for (const node of [...upstream.graph, ...downstream.graph]) {
    byId.set(node.id, node);
    for (const edge of [...node.inEdges, ...node.outEdges]) edges.set(`${edge.origin}->${edge.destination}`, edge);
  }
  return {
    nodes: [...byId.values()],
    edges: [...edges.values()].filter((e) => byId.has(e.origin) && byId.has(e.destination)),
    truncated: upstream.truncated || downstream.truncated,
  };
}

// Lineage nodes carry Marquez's lineage shapes, without facets: the panel loads them from the job or dataset.
function facetsOf(load) {
  const box = h('div', {}, loading());
  load().then(
    (entity) => replace(box, facetSections(entity.facets)),
    (error) => replace(box, errorBox(error)),
  );
  return box;
}

// Data-quality results the job's latest run reported on what it read.
function inputQuality(run) {
  const tested = (run?.inputDatasetVersions || []).filter((v) => qualitySections(v.facets).length);
  if (!tested.length) return null;
  return [
    h('h3', {}, 'Data quality of its inputs (latest run)'),
    tested.map((v) => h('div', { class: 'quality' }, h('p', {}, h('strong', {}, v.datasetVersionId.name)), qualitySections(v.facets))),
  ];
}

// Data-quality results on this dataset, as reported by the latest runs of the jobs that read it.
function readerQuality(node, byId) {
  const { namespace, name } = node.data;
  const reports = [];
  for (const edge of node.outEdges) {
    const reader = byId.get(edge.destination);
    const run = reader?.data.latestRun;
    for (const v of run?.inputDatasetVersions || []) {
      if (v.datasetVersionId.namespace !== namespace || v.datasetVersionId.name !== name) continue;
      const sections = qualitySections(v.facets);
      if (sections.length) reports.push(h('div', { class: 'quality' }, h('p', { class: 'muted' }, `Reported by ${reader.data.name}, run ${run.id.slice(0, 8)} (${formatTime(run.startedAt)})`), sections));
    }
  }
  return reports.length ? [h('h3', {}, 'Data quality'), reports] : null;
}

// Jobs that run inside another (an Airflow DAG's tasks, a dbt invocation's models) drawn as one node for
// their parent, with the edges of its children: the toggle "Group jobs into their parent".
export function collapseChildren(nodes, edges) {
  const groupOf = new Map();
  const groups = new Map();
  for (const node of nodes) {
    const parent = node.type === 'JOB' ? node.data.parentJobUuid : null;
    if (!parent) continue;
    const id = `group:${parent}`;
    groupOf.set(node.id, id);
    if (!groups.has(id)) groups.set(id, { id, type: 'GROUP', data: { name: node.data.parentJobName, children: [] }, inEdges: [], outEdges: [] });
    groups.get(id).data.children.push(node);
  }
  const kept = nodes.filter((n) => !groupOf.has(n.id));
  const moved = new Map();
  for (const e of edges) {
    const origin = groupOf.get(e.origin) || e.origin;
    const destination = groupOf.get(e.destination) || e.destination;
    if (origin !== destination) moved.set(`${origin}->${destination}`, { origin, destination });
  }
  return { nodes: [...kept, ...groups.values()], edges: [...moved.values()], groupOf };
}

function groupDetails(node) {
  return [
    h('h2', {}, h('span', { class: 'kind kind-job' }, 'Job'), ' ', node.data.name),
    h('p', { class: 'muted' }, `${node.data.children.length} jobs run inside it`),
    h('ul', {}, node.data.children.map((c) => h('li', {}, h('a', { href: paths.job(c.data.namespace, c.data.name) }, c.data.name), c.data.latestRun ? [' ', stateBadge(c.data.latestRun.state)] : null))),
  ];
}

function jobDetails(node) {
  const job = node.data;
  const run = job.latestRun;
  return [
    h('h2', {}, h('span', { class: 'kind kind-job' }, 'Job'), ' ', job.name),
    h('p', { class: 'muted' }, job.namespace),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Latest run'),
      h('dd', {}, run ? [stateBadge(run.state), ' ', h('a', { href: paths.run(run.id), class: 'mono' }, run.id.slice(0, 8))] : 'never run'),
      h('dt', {}, 'Duration'),
      h('dd', {}, run ? formatDuration(run.durationMs) : '—'),
      h('dt', {}, 'Started'),
      h('dd', {}, run ? formatTime(run.startedAt) : '—'),
    ),
    h(
      'p',
      { class: 'actions' },
      h('a', { class: 'button', href: paths.job(job.namespace, job.name) }, 'Run history'),
      h('a', { class: 'button', href: paths.lineage(node.id) }, 'Center here'),
      run?.state === 'FAILED' ? h('a', { class: 'button primary', href: paths.newBackfill({ runId: run.id }) }, 'Plan backfill') : null,
    ),
    job.description ? h('p', {}, job.description) : null,
    facetsOf(() => api.job(job.namespace, job.name)),
    inputQuality(run),
  ];
}

function datasetDetails(node, byId, graph) {
  const dataset = node.data;
  const onGraph = graph && (dataset.fields || []).length
    ? h('button', { type: 'button', class: 'button', 'aria-pressed': String(graph.isExpanded(node.id)) }, graph.isExpanded(node.id) ? 'Hide columns on the graph' : 'Show columns on the graph')
    : null;
  onGraph?.addEventListener('click', () => {
    const on = !graph.isExpanded(node.id);
    graph.expand([node.id], on);
    onGraph.textContent = on ? 'Hide columns on the graph' : 'Show columns on the graph';
    onGraph.setAttribute('aria-pressed', String(on));
  });
  const versions = h('div', {}, loading());
  api.datasetVersions(dataset.namespace, dataset.name, { limit: 5 }).then(
    (page) => replace(versions, versionsList(dataset.namespace, dataset.name, page.versions, dataset.currentVersion, { compact: true })),
    (error) => replace(versions, errorBox(error)),
  );
  return [
    h('h2', {}, h('span', { class: 'kind kind-dataset' }, 'Dataset'), ' ', dataset.name),
    h('p', { class: 'muted' }, dataset.namespace),
    h(
      'p',
      { class: 'actions' },
      h('a', { class: 'button', href: paths.dataset(dataset.namespace, dataset.name) }, 'Dataset page'),
      h('a', { class: 'button', href: paths.lineage(node.id) }, 'Center here'),
      onGraph,
    ),
    dataset.description ? h('p', {}, dataset.description) : null,
    h('h3', {}, 'Schema'),
    schemaTable(dataset.fields || []),
    readerQuality(node, byId),
    h('h3', {}, 'Column lineage'),
    columnLineagePanel(dataset.namespace, dataset.name, dataset.fields || [], { idPrefix: 'details-cl' }),
    h('h3', {}, 'Latest versions'),
    versions,
    facetsOf(() => api.dataset(dataset.namespace, dataset.name)),
  ];
}

// A job's look on the graph follows its latest run (the legend explains it).
function runStateClass(run) {
  if (!run) return 'state-none';
  return { FAILED: 'failed', RUNNING: 'state-running', ABORTED: 'state-aborted' }[run.state] || 'state-completed';
}

export async function lineagePage(main, query) {
  const nodeId = query.get('nodeId');
  const up = depthParam(query, 'up');
  const down = depthParam(query, 'down');
  const collapse = query.get('collapse') === '1';
  document.title = 'Lineage · Headwater';
  if (!nodeId) {
    replace(main, h('h1', {}, 'Lineage'), h('p', {}, 'Search for a job or dataset above, then open its lineage.'));
    return;
  }
  const number = (id, label, value) => [
    h('label', { for: id }, label),
    h('input', { id, name: id, type: 'number', min: '0', max: '50', value: String(value), class: 'depth' }),
  ];
  const form = h(
    'form',
    { class: 'lineage-controls', 'aria-label': 'Lineage depth' },
    number('depth-up', 'Upstream depth', up),
    number('depth-down', 'Downstream depth', down),
    h('button', { type: 'submit' }, 'Apply'),
    h('label', { class: 'toggle' }, h('input', { id: 'collapse-children', name: 'collapse', type: 'checkbox', checked: collapse }), ' Group jobs into their parent'),
  );
  const apply = () =>
    go(paths.lineage(nodeId, { up: form.elements['depth-up'].value, down: form.elements['depth-down'].value, collapse: form.elements.collapse.checked }), { replace: true });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  form.elements.collapse.addEventListener('change', apply);
  const graphArea = h('div', { id: 'lineage-graph', class: 'graph' }, loading('Loading the graph…'));
  const details = h('aside', { id: 'node-details', class: 'details', 'aria-label': 'Selected node', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Click a node to see its details.'));
  const [kind] = nodeId.split(':', 1);
  replace(
    main,
    h('div', { class: 'lineage-head' }, h('h1', {}, 'Lineage of ', h('span', { class: 'mono' }, nodeId.slice(kind.length + 1))), form),
    h('p', { class: 'muted hint' }, 'Drag to pan, scroll to zoom, click a node for its details and paths, double-click to centre the lineage on it.'),
    h('div', { class: 'lineage-layout' }, graphArea, details),
  );
  main.classList.add('wide');
  let data;
  try {
    data = await loadGraph(nodeId, up, down);
  } catch (error) {
    replace(graphArea, errorBox(error));
    return () => main.classList.remove('wide');
  }
  let groupOf = new Map();
  if (collapse) {
    const collapsed = collapseChildren(data.nodes, data.edges);
    data = { ...data, nodes: collapsed.nodes, edges: collapsed.edges };
    groupOf = collapsed.groupOf;
  }
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const asked = groupOf.get(nodeId) || nodeId;
  const rootId = byId.has(asked) ? asked : [...byId.keys()].find((id) => id.toLowerCase() === asked.toLowerCase());
  let graph = null;
  graph = await drawGraph(graphArea, {
    name: 'lineage',
    rootId,
    legend: LINEAGE_LEGEND,
    nodes: data.nodes.map((n) => ({
      id: n.id,
      kind: n.type === 'GROUP' ? 'JOB' : n.type,
      label: n.type === 'GROUP' ? `${n.data.name} (${n.data.children.length})` : n.data.name,
      namespace: n.type === 'GROUP' ? n.data.children[0].data.namespace : n.data.namespace,
      state: n.type === 'JOB' ? n.data.latestRun?.state || 'never run' : null,
      columns: n.type === 'DATASET' ? n.data.fields || [] : null,
      classes: [n.type === 'DATASET' ? 'dataset' : 'job', n.type === 'JOB' ? runStateClass(n.data.latestRun) : ''].join(' ').trim(),
    })),
    edges: data.edges.map((e) => ({ source: e.origin, target: e.destination })),
    onOpen: (id) => (id.startsWith('group:') ? null : go(paths.lineage(id, { up, down, collapse }))),
    onSelect: (id) => {
      const node = id && byId.get(id);
      if (!node) replace(details, h('p', { class: 'muted' }, 'Click a node to see its details.'));
      else if (node.type === 'GROUP') replace(details, groupDetails(node));
      else replace(details, node.type === 'JOB' ? jobDetails(node) : datasetDetails(node, byId, graph));
    },
  });
  const { pick } = graph;
  if (data.truncated) graphArea.prepend(h('p', { class: 'warning', role: 'status' }, `Only the first ${MAX_NODES} nodes are drawn: lower the depth.`));
  if (rootId) pick(rootId);
  return () => main.classList.remove('wide');
}

