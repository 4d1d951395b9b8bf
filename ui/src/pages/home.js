import { api } from '../api.js';
import { errorBox, formatTime, h, loading, replace, stateBadge } from '../dom.js';
import { loadIncidents } from '../incidents.js';
import { paths } from '../paths.js';
import { progressBar } from './plan.js';

const KIND_LABELS = {
  run_failed: 'Run failed',
  data_quality: 'Quality check failed',
  late: 'Late',
  schema_change: 'Schema change',
  backfill_failed: 'Backfill paused',
};

// What was seen, by kind of incident.
function observed(incident) {
  const d = incident.details || {};
  const lines = [];
  if (d.errorMessage) lines.push(h('p', { class: 'error-message' }, d.errorMessage));
  for (const a of d.failedAssertions || []) lines.push(h('p', { class: 'error-message' }, `Failed assertion ${a.assertion}${a.column ? ` on ${a.column}` : ''}`));
  for (const r of d.brokenRules || []) lines.push(h('p', { class: 'error-message' }, `${r.metric}${r.column ? ` of ${r.column}` : ''} = ${r.value} (allowed ${r.min ?? '−∞'} … ${r.max ?? '∞'})`));
  for (const c of d.changedColumns || []) lines.push(h('p', { class: 'error-message' }, c.after ? `Column ${c.name} retyped ${c.before} → ${c.after}` : `Column ${c.name} dropped`));
  if (d.reason) lines.push(h('p', { class: 'error-message' }, d.reason, d.link ? [' · ', h('a', { href: d.link, target: '_blank', rel: 'noopener' }, 'see it in Airflow')] : null));
  if (d.expectedBy) lines.push(h('p', { class: 'error-message' }, `Expected a completed run by ${formatTime(d.expectedBy)} (last ${formatTime(d.lastCompletedAt)})`));
  return lines;
}

function incidentCard(incident) {
  const { job, dataset } = incident;
  const subject = job
    ? h('a', { href: paths.job(job.namespace, job.name) }, job.name)
    : dataset
      ? h('a', { href: paths.dataset(dataset.namespace, dataset.name) }, dataset.name)
      : incident.details?.planId
        ? h('a', { href: paths.backfill(incident.details.planId) }, 'Backfill plan')
        : incident.title;
  const node = job ? `job:${job.namespace}:${job.name}` : dataset ? `dataset:${dataset.namespace}:${dataset.name}` : null;
  return h(
    'article',
    { class: `incident ${incident.status}`, dataset: { incidentId: incident.id, kind: incident.kind, ...(incident.runId ? { runId: incident.runId } : {}) } },
    h(
      'header',
      {},
      incident.kind === 'run_failed' && incident.details?.state ? stateBadge(incident.details.state) : h('span', { class: 'state state-incident' }, KIND_LABELS[incident.kind] || incident.kind),
      h('h3', {}, subject),
      h('span', { class: 'muted' }, (job || dataset)?.namespace || ''),
    ),
    h(
      'p',
      { class: 'meta' },
      incident.title,
      ` · since ${formatTime(incident.openedAt)}`,
      incident.occurrences > 1 ? ` · seen ${incident.occurrences} times` : '',
      incident.owners.length ? ` · owned by ${incident.owners.join(', ')}` : '',
    ),
    incident.status === 'resolved'
      ? h('p', { class: 'resolution' }, `Resolved ${formatTime(incident.resolvedAt)}${incident.resolution ? `: ${incident.resolution}` : ''}`)
      : null,
    observed(incident),
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
      h('a', { class: 'button primary', href: incident.backfillUrl }, 'Plan backfill'),
      node ? h('a', { class: 'button', href: paths.lineage(node, { up: 1, down: 3 }) }, 'Lineage') : null,
      incident.runId ? h('a', { class: 'button', href: paths.run(incident.runId) }, 'Run details') : null,
    ),
  );
}

export async function homePage(main) {
  document.title = 'Incidents · Headwater';
  const incidents = h('section', { id: 'incidents', 'aria-labelledby': 'incidents-title' }, loading());
  const resolved = h('section', { id: 'resolved-incidents', 'aria-labelledby': 'resolved-title' }, loading());
  const plans = h('section', { id: 'recent-plans', 'aria-labelledby': 'plans-title' }, loading());
  replace(
    main,
    h('h1', { id: 'incidents-title' }, 'Incidents at a glance'),
    h('p', { class: 'muted' }, 'Open incidents — failed runs, failed quality checks, late data, breaking schema changes — and what they make bad downstream.'),
    incidents,
    h('h2', { id: 'resolved-title' }, 'Recently resolved'),
    h('p', { class: 'muted' }, 'A later success closes an incident; the data it made bad may still need a backfill.'),
    resolved,
    h('h2', { id: 'plans-title' }, 'Backfill plans'),
    plans,
  );
  const show = (section, empty) => (list) =>
    replace(section, list.length ? h('div', { class: 'incident-list' }, list.map(incidentCard)) : h('p', {}, empty));
  loadIncidents({ status: 'open' }).then(show(incidents, 'No open incidents. All clear.'), (error) => replace(incidents, errorBox(error)));
  loadIncidents({ status: 'resolved', limit: 10 }).then(show(resolved, 'None.'), (error) => replace(resolved, errorBox(error)));
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
