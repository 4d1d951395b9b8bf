import { api, nodeId } from '../api.js';
import { errorBox, formatDuration, formatTime, h, loading, replace, stateBadge } from '../dom.js';
import { facetSections, owners } from '../facets.js';
import { paths } from '../paths.js';

const PAGE = 50;

export function runsTable(runs) {
  return h(
    'table',
    { class: 'list runs' },
    h(
      'thead',
      {},
      h('tr', {}, ['State', 'Run', 'Nominal time', 'Started', 'Ended', 'Duration', ''].map((c) => h('th', { scope: 'col' }, c))),
    ),
    h(
      'tbody',
      {},
      runs.map((run) =>
        h(
          'tr',
          { class: run.state === 'FAILED' ? 'failed' : null, dataset: { runId: run.id } },
          h('td', {}, stateBadge(run.state)),
          h('td', {}, h('a', { href: paths.run(run.id), class: 'mono' }, run.id.slice(0, 8))),
          h('td', {}, run.nominalStartTime ? `${formatTime(run.nominalStartTime)} → ${formatTime(run.nominalEndTime)}` : '—'),
          h('td', {}, formatTime(run.startedAt)),
          h('td', {}, formatTime(run.endedAt)),
          h('td', {}, formatDuration(run.durationMs)),
          h('td', {}, run.state === 'FAILED' ? h('a', { href: paths.newBackfill({ runId: run.id }) }, 'Plan backfill') : null),
        ),
      ),
    ),
  );
}

function datasetLinks(list) {
  if (!list.length) return h('p', { class: 'muted' }, 'None');
  return h('ul', {}, list.map((d) => h('li', {}, h('a', { href: paths.dataset(d.namespace, d.name) }, d.name), h('span', { class: 'muted' }, ` ${d.namespace}`))));
}

export async function jobPage(main, namespace, name) {
  document.title = `${name} · Headwater`;
  replace(main, loading());
  let job;
  try {
    job = await api.job(namespace, name);
  } catch (error) {
    replace(main, h('h1', {}, name), errorBox(error));
    return;
  }
  const runs = h('div', {}, loading());
  const children = h('section', { id: 'job-children' });
  const jobOwners = owners(job.facets);
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: paths.namespaces() }, 'Namespaces'), ' / ', h('a', { href: paths.namespace(namespace) }, namespace), ' / '),
    h('h1', {}, h('span', { class: 'kind kind-job' }, 'Job'), ' ', job.name),
    h(
      'p',
      { class: 'meta' },
      job.latestRun ? ['Latest run ', stateBadge(job.latestRun.state), ` · ${formatDuration(job.latestRun.durationMs)}`] : 'Never run',
      jobOwners.length ? ` · owned by ${jobOwners.join(', ')}` : '',
      job.parentJobName
        ? [' · runs inside ', h('a', { href: paths.job(job.parentJobNamespace || namespace, job.parentJobName), class: 'parent-job' }, job.parentJobName)]
        : '',
    ),
    job.description ? h('p', {}, job.description) : null,
    h(
      'p',
      { class: 'actions' },
      h('a', { class: 'button', href: paths.lineage(nodeId('job', namespace, name)) }, 'Lineage'),
      h('a', { class: 'button', href: paths.newBackfill({ jobNamespace: namespace, job: name }) }, 'Plan backfill for dates'),
    ),
    h(
      'div',
      { class: 'columns' },
      h('section', {}, h('h2', {}, 'Inputs'), datasetLinks(job.inputs)),
      h('section', {}, h('h2', {}, 'Outputs'), datasetLinks(job.outputs)),
    ),
    children,
    h('h2', {}, 'Runs'),
    runs,
    h('h2', {}, 'Facets'),
    facetSections(job.facets),
  );

  async function show(offset) {
    try {
      const page = await api.jobRuns(namespace, name, { limit: PAGE, offset });
      const failed = page.runs.filter((r) => r.state === 'FAILED').length;
      replace(
        runs,
        h('p', { class: 'muted' }, `${page.totalCount} runs${failed ? ` · ${failed} failed on this page` : ''}`),
        runsTable(page.runs),
        page.totalCount > PAGE
          ? h(
              'nav',
              { class: 'pager', 'aria-label': 'Run pages' },
              h('button', { type: 'button', disabled: offset === 0, onclick: () => show(Math.max(0, offset - PAGE)) }, 'Newer'),
              h('span', {}, `${offset + 1}–${Math.min(offset + PAGE, page.totalCount)} of ${page.totalCount}`),
              h('button', { type: 'button', disabled: offset + PAGE >= page.totalCount, onclick: () => show(offset + PAGE) }, 'Older'),
            )
          : null,
      );
    } catch (error) {
      replace(runs, errorBox(error));
    }
  }
  show(0);
  // The jobs that run inside this one (an Airflow DAG's tasks, the dbt or Spark jobs a task starts).
  api.jobChildren(namespace, name).then(
    (page) => {
      if (!page.totalCount) return;
      replace(
        children,
        h('h2', {}, 'Runs inside it'),
        h(
          'ul',
          { class: 'children' },
          page.jobs.map((child) =>
            h(
              'li',
              {},
              h('a', { href: paths.job(child.namespace, child.name) }, child.name),
              child.namespace !== namespace ? h('span', { class: 'muted' }, ` ${child.namespace}`) : null,
              child.latestRun ? [' ', stateBadge(child.latestRun.state)] : null,
            ),
          ),
        ),
        page.totalCount > page.jobs.length ? h('p', { class: 'muted' }, `${page.jobs.length} of ${page.totalCount} shown`) : null,
      );
    },
    (error) => replace(children, errorBox(error)),
  );
}
