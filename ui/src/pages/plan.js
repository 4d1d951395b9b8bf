// A backfill plan as people use it: ordered levels on a graph and as a list, owners, why each step is there,
// and the Airflow commands to copy.
import { copyable, formatTime, h, replace, stateBadge, uniq } from '../dom.js';
import { drawGraph } from '../graph.js';
import { paths } from '../paths.js';

export function progressBar(progress) {
  const label = `${progress.status.replace('_', ' ')} · ${progress.stepsDone}/${progress.steps} steps · ${progress.runsDone}/${progress.runs} runs`;
  return h(
    'span',
    { class: `progress progress-${progress.status}` },
    h('progress', { max: String(progress.runs || 1), value: String(progress.runsDone), 'aria-label': label }),
    ' ',
    label,
  );
}

const count = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function window_(w) {
  return `${formatTime(w.start)} → ${formatTime(w.end)}`;
}

// Names for node ids of the plan (the path of a step names jobs and datasets).
function namer(plan) {
  const known = new Map();
  for (const step of plan.jobs) known.set(step.nodeId, { kind: 'JOB', ...step.job });
  for (const d of plan.datasets) known.set(d.nodeId, { kind: 'DATASET', ...d.dataset });
  if (plan.root.kind === 'run') known.set(plan.root.nodeId, { kind: 'RUN', runId: plan.root.runs[0], ...plan.root.job });
  else if (plan.root.job) known.set(plan.root.nodeId, { kind: 'JOB', ...plan.root.job });
  if (plan.root.dataset) known.set(plan.root.nodeId, { kind: 'DATASET', ...plan.root.dataset });
  return (id) => known.get(id) || null;
}

function pathChain(path, name) {
  return h(
    'ol',
    { class: 'path' },
    path.map((id) => {
      const node = name(id);
      if (!node) return h('li', {}, id);
      if (node.kind === 'RUN') {
        return h('li', {}, h('a', { href: paths.run(node.runId) }, h('span', { class: 'kind kind-run' }, 'Run'), ' ', h('span', { class: 'mono' }, node.runId.slice(0, 8))));
      }
      return h('li', {}, h('a', { href: paths.node(node.kind, node.namespace, node.name) }, h('span', { class: `kind kind-${node.kind.toLowerCase()}` }, node.kind === 'JOB' ? 'Job' : 'Dataset'), ' ', node.name));
    }),
  );
}

function runsTable(runs) {
  return h(
    'table',
    { class: 'list plan-runs' },
    h('thead', {}, h('tr', {}, ['Run', 'State', 'Logical date / nominal time', 'Why', 'Redone'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      runs.map((r) =>
        h(
          'tr',
          { class: r.state === 'FAILED' ? 'failed' : null },
          h('td', {}, h('a', { href: paths.run(r.runId), class: 'mono' }, r.runId.slice(0, 8))),
          h('td', {}, stateBadge(r.state)),
          h('td', {}, formatTime(r.logicalDate || r.nominalStartTime)),
          h('td', {}, r.reasons.join('; ')),
          h('td', {}, r.done === null || r.done === undefined ? '—' : r.done ? '✓ done' : 'not yet'),
        ),
      ),
    ),
  );
}

function stepCard(step, name) {
  return h(
    'article',
    { class: `step${step.done ? ' done' : ''}`, dataset: { nodeId: step.nodeId } },
    h(
      'header',
      {},
      h('h4', {}, h('a', { href: paths.job(step.job.namespace, step.job.name) }, step.job.name)),
      step.isRoot ? h('span', { class: 'tag' }, 'root') : null,
      step.inCycle ? h('span', { class: 'tag warning' }, 'in a cycle') : null,
      step.done ? h('span', { class: 'tag done' }, 'done') : null,
      step.airflow ? h('span', { class: 'muted' }, ` Airflow ${step.airflow.dagId} › ${step.airflow.taskId}`) : null,
    ),
    step.rerun && (step.rerunThrough || !step.airflow) ? h('p', { class: 'rerun' }, `How: ${step.rerun}`) : null,
    h('p', { class: 'owners-line' }, 'Owners: ', step.owners.length ? h('strong', {}, step.owners.join(', ')) : h('span', { class: 'muted' }, 'unknown')),
    h('div', { class: 'why' }, h('span', {}, 'Why: '), pathChain(step.path, name)),
    step.inputs.length
      ? h('p', {}, 'Bad inputs: ', step.inputs.map((i) => `${i.dataset.name}${i.columns ? ` (${i.columns.join(', ')})` : ''}`).join(', '))
      : null,
    step.windows.length ? h('p', {}, 'Data time to redo: ', step.windows.map(window_).join(', ')) : null,
    step.runs.length
      ? runsTable(step.runs)
      : h('p', { class: 'muted' }, 'No past run of it read the bad data: nothing to redo unless its next run is due.'),
  );
}

function dagCard(dag) {
  const api = dag.commands.airflow3Api.map((body) => JSON.stringify(body, null, 2)).join('\n');
  return h(
    'article',
    { class: 'dag', dataset: { dagId: dag.dagId } },
    h('h4', {}, `DAG ${dag.dagId}`, h('span', { class: 'muted' }, ` · level ${dag.level} · ${dag.namespace}`)),
    h('p', {}, 'Tasks: ', dag.tasks.join(', ')),
    h('p', {}, 'Logical dates: ', dag.logicalDateRanges.map((r) => (r.start === r.end ? formatTime(r.start) : `${formatTime(r.start)} … ${formatTime(r.end)}`)).join(', ')),
    dag.owners.length ? h('p', {}, 'Owners: ', dag.owners.join(', ')) : null,
    dag.dependsOn.length ? h('p', {}, 'After: ', dag.dependsOn.join(', ')) : null,
    h('h5', {}, 'Airflow 2: clear the tasks'),
    copyable(dag.commands.airflow2.join('\n')),
    h('h5', {}, 'Airflow 2: or backfill them'),
    copyable(dag.commands.airflow2Backfill.join('\n')),
    h('h5', {}, 'Airflow 3: backfill'),
    copyable(dag.commands.airflow3.join('\n')),
    h('h5', {}, 'Airflow 3 REST API: POST /api/v2/backfills'),
    copyable(api),
  );
}

export function renderPlan(container, plan) {
  const name = namer(plan);
  const graph = h('div', { id: 'plan-graph', class: 'graph plan-graph' });
  const allOwners = uniq(plan.jobs.flatMap((s) => s.owners));
  replace(
    container,
    h(
      'section',
      { class: 'plan-summary', 'aria-label': 'Summary' },
      h('p', { class: 'root-description' }, h('strong', {}, 'Root cause: '), plan.root.description),
      h(
        'p',
        { class: 'totals' },
        `${count(plan.totals.jobs, 'job')} in ${count(plan.totals.levels, 'level')} · ${count(plan.totals.runs, 'run')} to redo · ` +
          `${count(plan.totals.dags, 'Airflow DAG')} · ${count(plan.totals.datasets, 'dataset')} affected`,
      ),
      allOwners.length ? h('p', {}, 'Owners to coordinate: ', h('strong', {}, allOwners.join(', '))) : null,
      plan.root.failedAssertions?.length
        ? h('p', {}, 'Failed assertions: ', plan.root.failedAssertions.map((a) => `${a.assertion}${a.column ? ` on ${a.column}` : ''}`).join(', '))
        : null,
      plan.cycles.length ? h('p', { class: 'warning' }, `Cycles (each job planned once): ${plan.cycles.map((c) => c.jobs.join(' → ')).join('; ')}`) : null,
      plan.excluded.length ? h('p', { class: 'muted' }, `Left out by filters: ${plan.excluded.join(', ')}`) : null,
      plan.notImpacted.length ? h('p', { class: 'muted' }, `Cleared by column lineage: ${plan.notImpacted.join(', ')}`) : null,
    ),
    h('h3', {}, 'Order'),
    graph,
    h(
      'ol',
      { class: 'levels', start: '0' },
      plan.levels.map((level) =>
        h(
          'li',
          { class: 'level', dataset: { level: String(level.level) } },
          h('h3', {}, `Level ${level.level}`, h('span', { class: 'muted' }, level.steps.length > 1 ? ` · ${level.steps.length} steps, in parallel` : ' · 1 step')),
          level.steps.map((step) => stepCard(step, name)),
        ),
      ),
    ),
    h('h3', {}, 'Airflow commands'),
    plan.dags.length ? plan.dags.map(dagCard) : h('p', { class: 'muted' }, 'No Airflow task in this plan: re-run the jobs above with their own schedulers.'),
  );
  if (!plan.jobs.length) {
    graph.replaceWith(h('p', { class: 'muted' }, 'Nothing to redo.'));
    return Promise.resolve();
  }
  // The root cause (a run, a dataset version, a job's window) on the left, then the steps by level.
  const steps = new Set(plan.jobs.map((s) => s.nodeId));
  const cause = {
    id: `cause:${plan.root.nodeId}`, // a job root is also its own first step
    kind: 'CAUSE',
    label: plan.root.kind === 'run' ? `Run ${plan.root.runs[0]?.slice(0, 8) ?? ''}` : plan.root.kind === 'dataset' ? plan.root.dataset.name : `${plan.root.job.name} (window)`,
    classes: 'cause failed',
  };
  const firsts = plan.jobs.filter((s) => !s.dependsOn.some((d) => steps.has(d)));
  return drawGraph(graph, {
    name: 'plan',
    rootId: cause.id,
    nodes: [
      cause,
      ...plan.jobs.map((s) => ({
        id: s.nodeId,
        kind: 'JOB',
        label: `L${s.level} · ${s.job.name}`,
        classes: ['job', s.done ? 'done' : ''].join(' ').trim(),
      })),
    ],
    edges: [
      ...firsts.map((s) => ({ source: cause.id, target: s.nodeId })),
      ...plan.jobs.flatMap((s) => s.dependsOn.filter((d) => steps.has(d)).map((d) => ({ source: d, target: s.nodeId }))),
    ],
    onSelect: (id) => {
      if (!id) return;
      const card = container.querySelector(`article.step[data-node-id="${CSS.escape(id)}"]`);
      card?.scrollIntoView({ behavior: 'smooth', block: 'center' });
    },
  });
}
