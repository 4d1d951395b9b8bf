import { api } from '../api.js';
import { errorBox, formatDuration, formatTime, h, loading, replace, stateBadge } from '../dom.js';
import { facetSections, qualitySections } from '../facets.js';
import { paths } from '../paths.js';

async function jobOf(run) {
  if (run.jobVersion) return { namespace: run.jobVersion.namespace, name: run.jobVersion.name };
  try {
    // A run with no job version yet (e.g. failed before completing): the planner's root names its job.
    return (await api.impact({ runId: run.id, depth: 0 })).root.job;
  } catch {
    return null;
  }
}

function versions(list) {
  if (!list.length) return h('p', { class: 'muted' }, 'None');
  return h(
    'ul',
    {},
    list.map(({ datasetVersionId: v, facets }) =>
      h('li', {}, h('a', { href: paths.dataset(v.namespace, v.name) }, v.name), h('span', { class: 'muted mono' }, ` version ${v.version.slice(0, 8)}`), qualitySections(facets)),
    ),
  );
}

export async function runPage(main, id) {
  document.title = `Run ${id} · Headwater`;
  replace(main, loading());
  let run;
  try {
    run = await api.run(id);
  } catch (error) {
    replace(main, h('h1', {}, `Run ${id}`), errorBox(error));
    return;
  }
  const job = await jobOf(run);
  replace(
    main,
    h('h1', {}, 'Run ', h('span', { class: 'mono' }, run.id), ' ', stateBadge(run.state)),
    job ? h('p', { class: 'meta' }, 'Job ', h('a', { href: paths.job(job.namespace, job.name) }, job.name), h('span', { class: 'muted' }, ` ${job.namespace}`)) : null,
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Nominal time'),
      h('dd', {}, run.nominalStartTime ? `${formatTime(run.nominalStartTime)} → ${formatTime(run.nominalEndTime)}` : '—'),
      h('dt', {}, 'Started'),
      h('dd', {}, formatTime(run.startedAt)),
      h('dt', {}, 'Ended'),
      h('dd', {}, formatTime(run.endedAt)),
      h('dt', {}, 'Duration'),
      h('dd', {}, formatDuration(run.durationMs)),
    ),
    h(
      'p',
      { class: 'actions' },
      h('a', { class: `button${run.state === 'FAILED' ? ' primary' : ''}`, href: paths.newBackfill({ runId: run.id }) }, 'Plan backfill from this run'),
    ),
    h('div', { class: 'columns' }, h('section', {}, h('h2', {}, 'Read'), versions(run.inputDatasetVersions)), h('section', {}, h('h2', {}, 'Wrote'), versions(run.outputDatasetVersions))),
    h('h2', {}, 'Facets'),
    facetSections(run.facets),
  );
}
