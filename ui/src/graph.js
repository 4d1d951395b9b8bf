// Graphs drawn with cytoscape and a layered left-to-right dagre layout: the lineage explorer and plan graphs.
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import { h } from './dom.js';

cytoscape.use(dagre);

const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 12,
      'font-family': 'system-ui, sans-serif',
      color: '#0f172a',
      'text-valign': 'center',
      'text-halign': 'center',
      'text-wrap': 'ellipsis',
      'text-max-width': 176,
      width: 190,
      height: 36,
      shape: 'round-rectangle',
      'background-color': '#e2e8f0',
      'border-width': 1,
      'border-color': '#94a3b8',
    },
  },
  { selector: 'node.job', style: { 'background-color': '#dbeafe', 'border-color': '#2563eb' } },
  { selector: 'node.dataset', style: { shape: 'rectangle', 'background-color': '#dcfce7', 'border-color': '#16a34a' } },
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

const KINDS = { JOB: 'Job', DATASET: 'Dataset', CAUSE: 'Root cause' };

// Test and diagnostics hook: what the last graph drew, and how long it took.
window.__headwater = window.__headwater || {};

/**
 * Draw `nodes` ({id, label, classes}) and `edges` ({source, target}) into `container`.
 * `onSelect(id | null)` is called when a node is picked (click, or the keyboard list).
 * Resolves with the cytoscape instance once the first frame is on screen.
 */
export function drawGraph(container, { nodes, edges, rootId, onSelect, onOpen, name = 'graph' }) {
  const started = performance.now();
  const large = nodes.length > 300;
  const canvas = h('div', { class: 'graph-canvas', role: 'img', 'aria-label': `Graph of ${nodes.length} nodes` });
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
    button('Fit', () => {
      cy.fit(undefined, 24);
      if (cy.zoom() > 1) {
        cy.zoom(1);
        cy.center();
      }
    }),
    status,
  );
  container.replaceChildren(toolbar, canvas);

  const cy = cytoscape({
    container: canvas,
    elements: [
      ...nodes.map((node) => ({ group: 'nodes', data: { id: node.id, label: node.label }, classes: node.classes })),
      ...edges.map((edge) => ({
        group: 'edges',
        data: { id: `${edge.source}->${edge.target}`, source: edge.source, target: edge.target },
      })),
    ],
    style: STYLE,
    // network-simplex ranks best; longest-path is several times faster and good enough on large graphs.
    layout: {
      name: 'dagre',
      rankDir: 'LR',
      ranker: large ? 'longest-path' : 'network-simplex',
      nodeSep: 14,
      rankSep: 70,
      edgeSep: 6,
      fit: true,
      padding: 24,
    },
    minZoom: 0.03,
    maxZoom: 3,
    selectionType: 'single',
    boxSelectionEnabled: false,
    textureOnViewport: large,
    hideEdgesOnViewport: large,
  });
  // A small graph fitted to a wide canvas would be drawn huge: never past natural size. A large one fitted
  // is unreadable: start readable around the root instead ('Fit' shows it all).
  if (cy.zoom() > 1) {
    cy.zoom(1);
    cy.center();
  } else if (large && rootId && !cy.getElementById(rootId).empty()) {
    cy.zoom(0.8);
    cy.center(cy.getElementById(rootId));
  }
  const center = () => ({ x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 });

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
          renderMs: ms,
          cy,
        };
        if (rootId && !cy.getElementById(rootId).empty()) cy.getElementById(rootId).addClass('root');
        resolve({ cy, ms, pick });
      }),
    );
  });
}
