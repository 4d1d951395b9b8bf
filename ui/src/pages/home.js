import { api } from '../api.js';
import { errorBox, formatDuration, formatTime, h, loading, replace, stateBadge } from '../dom.js';
import { loadIncidents } from '../incidents.js';
import { paths } from '../paths.js';
import { progressBar } from './plan.js';

function incidentCard(incident) {
  const { job } = incident;
  return h(
    'article',
    { class: 'incident', dataset: { runId: incident.runId } },
    h(
      'header',
      {},
      stateBadge(incident.state),
      h('h3', {}, h('a', { href: paths.job(job.namespace, job.name) }, job.name)),
      h('span', { class: 'muted' }, job.namespace),
    ),
    h(
      'p',
      { class: 'meta' },
      `Ended ${formatTime(incident.endedAt)} after ${formatDuration(incident.durationMs)}`,
      incident.nominalStartTime ? ` · for ${formatTime(incident.nominalStartTime)}` : '',
      incident.owners.length ? ` · owned by ${incident.owners.join(', ')}` : '',
    ),
    incident.error ? h('p', { class: 'error-message' }, incident.error) : null,
    incident.impactError
      ? h('p', { class: 'muted' }, `Impact unknown: ${incident.impactError}`)
      : incident.downstream.length
        ? [
            h(
              'p',
              {},
              h('strong', {}, `${incident.downstream.length} downstream job${incident.downstream.length === 1 ? '' : 's'}`),
              ` and ${incident.datasets} dataset${incident.datasets === 1 ? '' : 's'} affected`,
              incident.downstreamOwners.length ? ` · notify ${incident.downstreamOwners.join(', ')}` : '',
            ),
            h(
              'ul',
              { class: 'impacted' },
              incident.downstream.map((d) =>
                h(
                  'li',
                  {},
                  h('a', { href: paths.job(d.namespace, d.name) }, d.name),
                  d.owners.length ? h('span', { class: 'muted' }, ` — ${d.owners.join(', ')}`) : null,
                ),
              ),
            ),
          ]
        : h('p', { class: 'muted' }, 'Nothing downstream is affected.'),
    h(
      'p',
      { class: 'actions' },
      h('a', { class: 'button primary', href: paths.newBackfill({ runId: incident.runId }) }, 'Plan backfill'),
      h('a', { class: 'button', href: paths.lineage(`job:${job.namespace}:${job.name}`, { up: 1, down: 3 }) }, 'Lineage'),
      h('a', { class: 'button', href: paths.run(incident.runId) }, 'Run details'),
    ),
  );
}

export async function homePage(main) {
  document.title = 'Incidents · Headwater';
  const incidents = h('section', { id: 'incidents', 'aria-labelledby': 'incidents-title' }, loading());
  const plans = h('section', { id: 'recent-plans', 'aria-labelledby': 'plans-title' }, loading());
  replace(
    main,
    h('h1', { id: 'incidents-title' }, 'Incidents at a glance'),
    h('p', { class: 'muted' }, 'Recent failed runs and what they make bad downstream.'),
    incidents,
    h('h2', { id: 'plans-title' }, 'Backfill plans'),
    plans,
  );
  loadIncidents().then(
    (list) =>
      replace(incidents, list.length ? h('div', { class: 'incident-list' }, list.map(incidentCard)) : h('p', {}, 'No failed runs. All clear.')),
    (error) => replace(incidents, errorBox(error)),
  );
  api.plans({ limit: 5 }).then(
    ({ plans: saved, totalCount }) =>
      replace(
        plans,
        saved.length
          ? h(
              'ul',
              { class: 'plan-summaries' },
              saved.map((p) =>
                h('li', {}, h('a', { href: paths.backfill(p.id) }, p.name || p.root.description), ' ', progressBar(p.progress)),
              ),
            )
          : h('p', { class: 'muted' }, 'No saved plans yet.'),
        totalCount > saved.length ? h('p', {}, h('a', { href: paths.backfills() }, `All ${totalCount} plans`)) : null,
      ),
    (error) => replace(plans, errorBox(error)),
  );
}
