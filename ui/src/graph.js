// Graphs drawn with cytoscape and a layered left-to-right dagre layout: the lineage explorer and plan graphs.
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import { h, replace } from './dom.js';

cytoscape.use(dagre);

// Readability: labels are FONT_SIZE at zoom 1, and the default view (and 'Fit') never zooms out so far that
// they are drawn below MIN_LABEL_PX on screen: a graph that does not fit at that size is panned, not shrunk.
export const FONT_SIZE = 14;
export const MIN_LABEL_PX = 13;
const FONT = `${FONT_SIZE}px system-ui, sans-serif`;
const LINE_HEIGHT = 18;
const LABEL_MAX_WIDTH = 260; // a longer name wraps (at '.', '/', '_' or anywhere) instead of being cut
const MAX_LINES = 4;
const MAX_COLUMNS = 12;

const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': FONT_SIZE,
      'font-family': 'system-ui, sans-serif',
      color: '#0f172a',
      'text-valign': 'center',
      'text-halign': 'center',
      'text-wrap': 'wrap',
      'text-max-width': LABEL_MAX_WIDTH + 8,
      'line-height': LINE_HEIGHT / FONT_SIZE,
      // Far zoomed out (a whole large graph), unreadable labels are not drawn at all.
      'min-zoomed-font-size': 5,
      width: 'data(width)',
      height: 'data(height)',
      shape: 'round-rectangle',
      'background-color': '#e2e8f0',
      'border-width': 1,
      'border-color': '#94a3b8',
    },
  },
  { selector: 'node.job', style: { 'background-color': '#dbeafe', 'border-color': '#2563eb' } },
  { selector: 'node.dataset', style: { shape: 'rectangle', 'background-color': '#dcfce7', 'border-color': '#16a34a' } },
  { selector: 'node.expanded', style: { 'text-justification': 'left' } },
  { selector: 'node.state-running', style: { 'background-color': '#fef3c7', 'border-color': '#d97706', 'border-width': 2 } },
  { selector: 'node.state-aborted', style: { 'background-color': '#f1f5f9', 'border-color': '#64748b', 'border-style': 'dashed' } },
  { selector: 'node.state-none', style: { 'background-color': '#ffffff', 'border-style': 'dashed' } },
  { selector: 'node.failed', style: { 'background-color': '#fee2e2', 'border-color': '#dc2626', 'border-width': 2 } },
  { selector: 'node.done', style: { 'background-color': '#bbf7d0', 'border-color': '#15803d', 'border-width': 2 } },
  { selector: 'node.root', style: { 'border-width': 3, 'border-style': 'double' } },
  { selector: 'node.cause', style: { shape: 'diamond', width: 60, height: 60, 'text-valign': 'bottom', 'text-margin-y': 4 } },
  {
    selector: 'edge',
    style: {
      width: 1.5,
      'line-color': '#94a3b8',
      'target-arrow-color': '#94a3b8',
      'target-arrow-shape': 'triangle',
      'curve-style': 'bezier',
      'arrow-scale': 0.8,
    },
  },
  { selector: '.faded', style: { opacity: 0.18 } },
  { selector: 'edge.path', style: { 'line-color': '#f59e0b', 'target-arrow-color': '#f59e0b', width: 2.5 } },
  { selector: 'node.path', style: { 'border-color': '#f59e0b', 'border-width': 2 } },
  { selector: 'node:selected', style: { 'border-color': '#f59e0b', 'border-width': 4, 'overlay-opacity': 0 } },
];

const LAYOUT = { name: 'dagre', rankDir: 'LR', nodeSep: 14, rankSep: 60, edgeSep: 6, fit: true, padding: 24 };

const KINDS = { JOB: 'Job', DATASET: 'Dataset', CAUSE: 'Root cause' };

// What the lineage explorer's legend explains: the class a node gets, and how it looks.
export const LINEAGE_LEGEND = [
  { label: 'Job', swatch: 'job' },
  { label: 'Dataset', swatch: 'dataset' },
  { label: 'Last run completed', swatch: 'job' },
  { label: 'Last run running', swatch: 'job state-running' },
  { label: 'Last run failed', swatch: 'job failed' },
  { label: 'Last run aborted', swatch: 'job state-aborted' },
  { label: 'Never run', swatch: 'job state-none' },
];

let measureContext;
function textWidth(text) {
  measureContext ??= document.createElement('canvas').getContext('2d');
  measureContext.font = FONT;
  return measureContext.measureText(text).width;
}

// A name as lines no wider than LABEL_MAX_WIDTH, broken after a '.', '/' or ':' where possible, else after
// '_', '-' or a space, else anywhere: `bookings_reports.publish_dashboard` reads as its two meaningful halves,
// never as `bookings_re…`.
export function wrapName(name) {
  const lines = [];
  let rest = name;
  while (rest && lines.length < MAX_LINES) {
    if (textWidth(rest) <= LABEL_MAX_WIDTH) {
      lines.push(rest);
      rest = '';
      break;
    }
    let fit = 1;
    while (fit < rest.length && textWidth(rest.slice(0, fit + 1)) <= LABEL_MAX_WIDTH) fit += 1;
    const head = rest.slice(0, fit);
    const after = (chars) => Math.max(...chars.map((c) => head.lastIndexOf(c)));
    const strong = after(['.', '/', ':']);
    const weak = after(['_', '-', ' ']);
    const cut = strong >= fit / 3 ? strong + 1 : weak >= fit / 3 ? weak + 1 : fit;
    lines.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest) lines[lines.length - 1] = `${lines[lines.length - 1].slice(0, -1)}…`; // the hover and panel show all
  return lines;
}

// A node's label and size: its name, and when expanded its columns below it.
function nodeBox(node, expanded) {
  const lines = wrapName(node.label);
  const columns = expanded ? node.columns || [] : [];
  const columnLines = columns.slice(0, MAX_COLUMNS).map((c) => (c.type ? `${c.name} · ${c.type}` : c.name));
  if (columns.length > MAX_COLUMNS) columnLines.push(`… ${columns.length - MAX_COLUMNS} more`);
  const all = columnLines.length ? [...lines, '', ...columnLines.map((l) => wrapName(l)[0])] : lines;
  const width = Math.max(120, ...all.map((l) => textWidth(l))) + 24;
  return { label: all.join('\n'), width: Math.ceil(width), height: all.length * LINE_HEIGHT + 18, nameLines: lines };
}

// Zoom to fit, but never past natural size nor below the readable floor; centred on `focus` when it does
// not all fit at a readable size.
function fitReadable(cy, focus) {
  cy.fit(undefined, 24);
  const floor = MIN_LABEL_PX / FONT_SIZE;
  if (cy.zoom() > 1) {
    cy.zoom(1);
    cy.center();
  } else if (cy.zoom() < floor) {
    cy.zoom(floor);
    cy.center(focus && !focus.empty() ? focus : cy.nodes().roots().first());
  }
}

function legendBox(entries) {
  return h(
    'div',
    { class: 'graph-legend', role: 'list', 'aria-label': 'Legend' },
    entries.map((e) => h('span', { class: 'legend-entry', role: 'listitem' }, h('span', { class: `legend-swatch ${e.swatch}`, 'aria-hidden': 'true' }), e.label)),
  );
}

// Test and diagnostics hook: what the last graph drew, and how long it took.
window.__headwater = window.__headwater || {};

/**
 * Draw `nodes` ({id, label, classes}) and `edges` ({source, target}) into `container`.
 * `onSelect(id | null)` is called when a node is picked (click, or the keyboard list).
 * Resolves with the cytoscape instance once the first frame is on screen.
 */
export function drawGraph(container, { nodes, edges, rootId, onSelect, onOpen, name = 'graph', legend = null }) {
  const started = performance.now();
  const large = nodes.length > 300;
  const canvas = h('div', { class: 'graph-canvas', role: 'img', 'aria-label': `Graph of ${nodes.length} nodes` });
  const tooltip = h('div', { class: 'graph-tooltip', role: 'tooltip', hidden: true });
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const expanded = new Set();
  const withColumns = nodes.some((node) => node.columns?.length);
  const columnsToggle = h('input', { type: 'checkbox', id: `${name}-columns` });
  const select = h(
    'select',
    { id: `${name}-node-select` },
    h('option', { value: '' }, `Select a node (${nodes.length})`),
    [...nodes]
      .sort((a, b) => a.label.localeCompare(b.label))
      .map((node) => h('option', { value: node.id }, `${KINDS[node.kind] || node.kind}: ${node.label}`)),
  );
  const status = h('span', { class: 'graph-status', role: 'status' });
  const button = (label, action) => h('button', { type: 'button', onclick: action }, label);
  const toolbar = h(
    'div',
    { class: 'graph-toolbar' },
    h('label', { for: `${name}-node-select`, class: 'visually-hidden' }, 'Select a node'),
    select,
    button('Zoom in', () => cy.zoom({ level: cy.zoom() * 1.3, renderedPosition: center() })),
    button('Zoom out', () => cy.zoom({ level: cy.zoom() / 1.3, renderedPosition: center() })),
    button('Fit', () => fitReadable(cy, cy.nodes(':selected').union(cy.getElementById(rootId || '')).first())),
    withColumns ? h('label', { class: 'toggle' }, columnsToggle, ' Show columns') : null,
    status,
  );
  const stage = h('div', { class: 'graph-stage' }, canvas, tooltip, legend ? legendBox(legend) : null);
  container.replaceChildren(toolbar, stage);

  const cy = cytoscape({
    container: canvas,
    elements: [
      ...nodes.map((node) => ({ group: 'nodes', data: { id: node.id, ...nodeBox(node, false) }, classes: node.classes })),
      ...edges.map((edge) => ({
        group: 'edges',
        data: { id: `${edge.source}->${edge.target}`, source: edge.source, target: edge.target },
      })),
    ],
    style: STYLE,
    // network-simplex ranks best; longest-path is several times faster and good enough on large graphs.
    layout: { ...LAYOUT, ranker: large ? 'longest-path' : 'network-simplex' },
    minZoom: 0.03,
    maxZoom: 3,
    selectionType: 'single',
    boxSelectionEnabled: false,
    textureOnViewport: large,
    hideEdgesOnViewport: large,
  });
  // A small graph fitted to a wide canvas would be drawn huge: never past natural size. A large one fitted
  // would be unreadable: start readable around the root instead, and pan.
  fitReadable(cy, cy.getElementById(rootId || ''));
  const center = () => ({ x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 });

  // Hover: the full name, namespace and state, whatever the zoom.
  function showTooltip(node) {
    const info = byId.get(node.id());
    if (!info) return;
    replace(
      tooltip,
      h('strong', {}, info.label),
      h('span', { class: 'tooltip-kind' }, [KINDS[info.kind] || info.kind, info.namespace].filter(Boolean).join(' · ')),
      info.state ? h('span', {}, `Last run: ${info.state}`) : null,
      info.columns?.length ? h('span', {}, `${info.columns.length} columns`) : null,
    );
    const at = node.renderedPosition();
    const below = at.y + node.renderedOuterHeight() / 2 + 8;
    tooltip.style.left = `${Math.max(4, Math.min(at.x - 40, canvas.clientWidth - 420))}px`;
    tooltip.style.top = `${below}px`;
    tooltip.hidden = false;
  }
  cy.on('mouseover', 'node', (event) => showTooltip(event.target));
  cy.on('mouseout', 'node', () => (tooltip.hidden = true));
  cy.on('viewport', () => (tooltip.hidden = true));

  // Expanding a dataset shows its columns on its node; the layout makes room, the view stays where it was.
  function expand(ids, on) {
    for (const id of ids) {
      const node = cy.getElementById(id);
      const info = byId.get(id);
      if (node.empty() || !info?.columns?.length) continue;
      if (on) expanded.add(id);
      else expanded.delete(id);
      node.data(nodeBox(info, on));
      node.toggleClass('expanded', on);
    }
    const keep = cy.nodes(':selected').first();
    cy.layout({ ...LAYOUT, ranker: large ? 'longest-path' : 'network-simplex', fit: false }).run();
    if (!keep.empty()) cy.center(keep);
    columnsToggle.checked = nodes.every((n) => !n.columns?.length || expanded.has(n.id));
  }
  columnsToggle.addEventListener('change', () => expand(nodes.map((n) => n.id), columnsToggle.checked));

  function highlight(id) {
    cy.elements().removeClass('faded path');
    if (!id) return;
    const node = cy.getElementById(id);
    if (node.empty()) return;
    const onPath = node.predecessors().union(node.successors()).union(node);
    cy.elements().not(onPath).addClass('faded');
    onPath.addClass('path');
  }

  function pick(id, { center: recenter = false } = {}) {
    cy.nodes().unselect();
    highlight(id);
    select.value = id || '';
    if (id) {
      const node = cy.getElementById(id);
      node.select();
      if (recenter) cy.animate({ center: { eles: node }, duration: 200 });
    }
    container.dataset.selected = id || '';
    onSelect?.(id || null);
  }

  cy.on('tap', 'node', (event) => pick(event.target.id()));
  if (onOpen) cy.on('dbltap', 'node', (event) => onOpen(event.target.id()));
  cy.on('tap', (event) => {
    if (event.target === cy) pick(null);
  });
  select.addEventListener('change', () => pick(select.value, { center: true }));

  return new Promise((resolve) => {
    // Two frames: the first paints the laid-out graph, the second starts after it.
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        const ms = Math.round(performance.now() - started);
        status.textContent = `${nodes.length} nodes, ${edges.length} edges drawn in ${ms} ms`;
        container.dataset.nodeCount = String(nodes.length);
        container.dataset.renderMs = String(ms);
        container.dataset.ready = 'true';
        window.__headwater[name] = {
          nodeIds: () => cy.nodes().map((n) => n.id()),
          edgeIds: () => cy.edges().map((e) => e.id()),
          select: (id) => pick(id, { center: true }),
          expand,
          // What is drawn on each node: its name's lines (the columns follow when expanded).
          nameLines: (id) => byId.has(id) && nodeBox(byId.get(id), false).nameLines,
          renderMs: ms,
          cy,
        };
        if (rootId && !cy.getElementById(rootId).empty()) cy.getElementById(rootId).addClass('root');
        resolve({ cy, ms, pick, expand, isExpanded: (id) => expanded.has(id) });
      }),
    );
  });
}
