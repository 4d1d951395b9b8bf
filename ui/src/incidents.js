// The data behind the home page, in one place: open incidents (GET /api/v1/incidents) and what each makes bad
// downstream. The server's incident worker stores each incident's impact shortly after it opens; until it has,
// the impact is asked for here with the incident's own backfill request.
import { api } from './api.js';
import { uniq } from './dom.js';

function impactFromPlan(found) {
  const root = found.jobs.filter((step) => step.isRoot);
  const downstream = found.jobs.filter((step) => !step.isRoot);
  return {
    jobs: downstream.map((step) => ({ job: step.job, owners: step.owners })),
    datasets: found.datasets,
    owners: uniq(downstream.flatMap((step) => step.owners)),
    subjectOwners: uniq(root.flatMap((step) => step.owners)),
  };
}

/**
 * @returns {Promise<Array<{id, kind, status, title, runId, resolvedAt, resolution, job, dataset, details, openedAt, occurrences, backfillUrl,
 *   owners: string[], downstream: Array<{namespace, name, owners: string[]}>, downstreamOwners: string[],
 *   datasets: number, impactError: string|null}>>}
 */
export async function loadIncidents({ status = 'open', limit = 20 } = {}) {
  const { incidents } = await api.incidents({ status, limit });
  return Promise.all(
    incidents.map(async (incident) => {
      let impact = incident.impact;
      let impactError = impact?.error || null;
      if (!impact) {
        try {
          impact = impactFromPlan(await api.impactOf(incident.backfill.preview.body));
        } catch (error) {
          impactError = error.message;
        }
      }
      const downstream = (impact?.jobs || []).map((j) => ({ ...j.job, owners: j.owners }));
      return {
        id: incident.id,
        kind: incident.kind,
        title: incident.title,
        runId: incident.runId,
        job: incident.job,
        dataset: incident.dataset,
        details: incident.details,
        status: incident.status,
        openedAt: incident.openedAt,
        resolvedAt: incident.resolvedAt,
        resolution: incident.resolution,
        occurrences: incident.occurrences,
        backfillUrl: incident.backfill.url,
        owners: impact?.subjectOwners || [],
        downstream,
        downstreamOwners: impact?.owners || uniq(downstream.flatMap((j) => j.owners)),
        datasets: (impact?.datasets || []).length,
        impactError,
      };
    }),
  );
}
