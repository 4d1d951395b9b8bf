// The data behind the home page, in one place: recent failed runs and what each one makes bad downstream.
// (When GET /api/v1/incidents exists, this is the one function to switch to it.)
import { api } from './api.js';
import { uniq } from './dom.js';
import { owners as facetOwners } from './facets.js';

/**
 * @returns {Promise<Array<{runId, job: {namespace, name}, state, endedAt, durationMs, nominalStartTime,
 *   nominalEndTime, error, owners: string[], downstream: Array<{namespace, name, owners: string[], runs: number}>,
 *   downstreamOwners: string[], datasets: number, impactError: string|null}>>}
 */
export async function loadIncidents({ limit = 10 } = {}) {
  const { failures } = await api.recentFailures(limit);
  return Promise.all(
    failures.map(async ({ job, run }) => {
      const incident = {
        runId: run.id,
        job,
        state: run.state,
        endedAt: run.endedAt,
        durationMs: run.durationMs,
        nominalStartTime: run.nominalStartTime,
        nominalEndTime: run.nominalEndTime,
        error: run.facets?.errorMessage?.message || null,
        owners: [],
        downstream: [],
        downstreamOwners: [],
        datasets: 0,
        impactError: null,
      };
      try {
        const impact = await api.impact({ runId: run.id });
        const root = impact.jobs.find((step) => step.isRoot);
        incident.owners = root ? root.owners : [];
        incident.downstream = impact.jobs
          .filter((step) => !step.isRoot)
          .map((step) => ({ ...step.job, owners: step.owners, runs: step.runs.length }));
        incident.downstreamOwners = uniq(incident.downstream.flatMap((j) => j.owners));
        incident.datasets = impact.datasets.length;
      } catch (error) {
        incident.impactError = error.message;
      }
      if (!incident.owners.length) incident.owners = facetOwners(run.facets);
      return incident;
    }),
  );
}
