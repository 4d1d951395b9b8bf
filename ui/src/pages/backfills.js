import { api, apiKey, setApiKey } from '../api.js';
import { errorBox, formatTime, h, loading, replace } from '../dom.js';
import { go } from '../navigation.js';
import { paths } from '../paths.js';
import { executionSection } from './execution.js';
import { progressBar, renderPlan } from './plan.js';

function apiKeySettings() {
  const input = h('input', { id: 'api-key', type: 'password', autocomplete: 'off', value: apiKey() });
  const status = h('span', { role: 'status' });
  return h(
    'details',
    { class: 'api-key' },
    h('summary', {}, 'API key'),
    h('p', { class: 'muted' }, 'Needed to save plans when the server sets HEADWATER_API_KEYS (and to read with HEADWATER_PROTECT_READS). Kept in this browser only.'),
    h(
      'div',
      { class: 'inline-form' },
      h('label', { for: 'api-key' }, 'Key'),
      input,
      h('button', { type: 'button', onclick: () => { setApiKey(input.value.trim()); status.textContent = input.value.trim() ? 'Saved' : 'Removed'; } }, 'Use this key'),
      status,
    ),
  );
}

export async function backfillsPage(main) {
  document.title = 'Backfill plans · Headwater';
  const list = h('div', {}, loading());
  replace(
    main,
    h('h1', {}, 'Backfill plans'),
    h('p', { class: 'actions' }, h('a', { class: 'button primary', href: paths.newBackfill() }, 'New plan')),
    list,
    apiKeySettings(),
  );
  try {
    const { plans, totalCount } = await api.plans({ limit: 100 });
    replace(
      list,
      plans.length
        ? h(
            'table',
            { class: 'list' },
            h('thead', {}, h('tr', {}, ['Plan', 'Root cause', 'Jobs / runs', 'Progress', 'Saved'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              plans.map((p) =>
                h(
                  'tr',
                  {},
                  h('td', {}, h('a', { href: paths.backfill(p.id) }, p.name || p.id.slice(0, 8))),
                  h('td', {}, p.root.description),
                  h('td', {}, `${p.totals.jobs} / ${p.totals.runs}`),
                  h('td', {}, progressBar(p.progress)),
                  h('td', {}, formatTime(p.createdAt)),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No saved plans yet.'),
      totalCount > plans.length ? h('p', { class: 'muted' }, `Showing the newest ${plans.length} of ${totalCount}.`) : null,
    );
  } catch (error) {
    replace(list, errorBox(error));
  }
}

const field = (id, label, attrs = {}) =>
  h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name: id, ...attrs }));

function toIso(date) {
  return date ? `${date}T00:00:00Z` : null;
}

export async function newBackfillPage(main, query) {
  document.title = 'New backfill plan · Headwater';
  const initialKind = query.get('dataset') ? 'dataset' : query.get('job') ? 'job' : 'run';
  const radio = (kind, label) =>
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'root-kind', value: kind, checked: kind === initialKind }), ` ${label}`);

  const failures = h('select', { id: 'recent-failure' }, h('option', { value: '' }, 'Loading recent failures…'));
  const runPanel = h(
    'div',
    { class: 'root-panel', dataset: { kind: 'run' } },
    h('div', { class: 'field' }, h('label', { for: 'recent-failure' }, 'Recent failure'), failures),
    field('run-id', 'Run id', { value: query.get('runId') || '', placeholder: '0193…', class: 'mono', size: '40' }),
  );
  const versions = h('select', { id: 'dataset-version' }, h('option', { value: '' }, 'Current version'));
  const datasetPanel = h(
    'div',
    { class: 'root-panel', dataset: { kind: 'dataset' } },
    field('dataset-namespace', 'Namespace', { value: query.get('datasetNamespace') || query.get('namespace') || '' }),
    field('dataset-name', 'Dataset', { value: query.get('dataset') || '' }),
    h('div', { class: 'field' }, h('label', { for: 'dataset-version' }, 'Bad version'), versions),
  );
  const jobPanel = h(
    'div',
    { class: 'root-panel', dataset: { kind: 'job' } },
    field('job-namespace', 'Namespace', { value: query.get('jobNamespace') || query.get('namespace') || '' }),
    field('job-name', 'Job', { value: query.get('job') || '' }),
    field('window-start', 'From (data time, inclusive)', { type: 'date', value: (query.get('start') || '').slice(0, 10) }),
    field('window-end', 'To (exclusive)', { type: 'date', value: (query.get('end') || '').slice(0, 10) }),
  );
  const form = h(
    'form',
    { class: 'plan-form', 'aria-label': 'Root cause' },
    h('fieldset', {}, h('legend', {}, 'What went wrong?'), radio('run', 'A failed or bad run'), radio('dataset', 'A bad dataset version'), radio('job', 'A job, between two dates')),
    runPanel,
    datasetPanel,
    jobPanel,
    h('div', { class: 'field' }, h('label', { for: 'plan-depth' }, 'Jobs downstream (depth)'), h('input', { id: 'plan-depth', type: 'number', min: '0', max: '1000', value: '20' })),
    h('button', { type: 'submit', class: 'primary' }, 'Preview plan'),
  );
  const result = h('div', { id: 'plan-result', 'aria-live': 'polite' });
  replace(main, h('p', { class: 'crumbs' }, h('a', { href: paths.backfills() }, 'Backfill plans'), ' / '), h('h1', {}, 'Plan a backfill'), form, result);

  const kind = () => form.querySelector('input[name=root-kind]:checked').value;
  const showPanel = () => [runPanel, datasetPanel, jobPanel].forEach((p) => (p.hidden = p.dataset.kind !== kind()));
  form.addEventListener('change', (event) => {
    if (event.target.name === 'root-kind') showPanel();
  });
  showPanel();

  api.recentFailures(30).then(
    ({ failures: list }) => {
      replace(
        failures,
        h('option', { value: '' }, list.length ? `Pick one of ${list.length} recent failures` : 'No recent failures'),
        list.map((f) => h('option', { value: f.run.id, selected: f.run.id === query.get('runId') }, `${f.job.name} — ended ${formatTime(f.run.endedAt)}`)),
      );
    },
    () => replace(failures, h('option', { value: '' }, 'Recent failures unavailable')),
  );
  failures.addEventListener('change', () => {
    if (failures.value) form.elements['run-id'].value = failures.value;
  });

  async function loadVersions() {
    const namespace = form.elements['dataset-namespace'].value.trim();
    const name = form.elements['dataset-name'].value.trim();
    if (!namespace || !name) return;
    try {
      const page = await api.datasetVersions(namespace, name, { limit: 50 });
      replace(
        versions,
        h('option', { value: '' }, 'Current version'),
        page.versions.map((v) => h('option', { value: v.version, selected: v.version === query.get('version') }, `${v.version.slice(0, 8)} — ${formatTime(v.createdAt)}${v.createdByRun ? ` (run ${v.createdByRun.state})` : ''}`)),
      );
    } catch {
      replace(versions, h('option', { value: '' }, 'Current version'));
    }
  }
  form.elements['dataset-namespace'].addEventListener('change', loadVersions);
  form.elements['dataset-name'].addEventListener('change', loadVersions);
  if (initialKind === 'dataset') await loadVersions();

  function request() {
    const depth = Number.parseInt(form.elements['plan-depth'].value, 10);
    const common = Number.isFinite(depth) ? { depth } : {};
    if (kind() === 'run') return { runId: form.elements['run-id'].value.trim(), ...common };
    if (kind() === 'dataset') {
      const body = { dataset: { namespace: form.elements['dataset-namespace'].value.trim(), name: form.elements['dataset-name'].value.trim() }, ...common };
      if (versions.value) body.version = versions.value;
      return body;
    }
    return {
      job: { namespace: form.elements['job-namespace'].value.trim(), name: form.elements['job-name'].value.trim() },
      start: toIso(form.elements['window-start'].value),
      end: toIso(form.elements['window-end'].value),
      ...common,
    };
  }

  async function preview() {
    const body = request();
    replace(result, loading('Planning…'));
    let plan;
    try {
      plan = await api.previewPlan(body);
    } catch (error) {
      replace(result, errorBox(error));
      return;
    }
    const nameInput = h('input', { id: 'plan-name', maxlength: '255', value: plan.root.description.slice(0, 120) });
    const saveStatus = h('div', { role: 'status' });
    const save = h('button', { type: 'button', class: 'primary', id: 'save-plan' }, 'Save plan');
    save.addEventListener('click', async () => {
      save.disabled = true;
      try {
        const saved = await api.savePlan({ ...body, name: nameInput.value.trim() || null });
        go(paths.backfill(saved.id));
      } catch (error) {
        replace(saveStatus, errorBox(error));
        save.disabled = false;
      }
    });
    const planArea = h('div', { class: 'plan' });
    replace(
      result,
      h('h2', {}, 'Plan'),
      h('div', { class: 'inline-form save-form' }, h('label', { for: 'plan-name' }, 'Plan name'), nameInput, save),
      saveStatus,
      planArea,
    );
    await renderPlan(planArea, plan);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    preview();
  });
  // A link that names a complete root cause (a failed run, a dataset version) plans straight away.
  if (query.get('runId') || (query.get('dataset') && query.get('version'))) await preview();
}

export async function savedBackfillPage(main, id) {
  document.title = 'Backfill plan · Headwater';
  replace(main, loading());
  let plan;
  try {
    plan = await api.plan(id);
  } catch (error) {
    replace(main, h('h1', {}, 'Backfill plan'), errorBox(error));
    return;
  }
  document.title = `${plan.name || 'Backfill plan'} · Headwater`;
  const planArea = h('div', { class: 'plan' });
  const progress = h('span', { class: 'plan-progress' }, progressBar(plan.progress));
  // While the plan runs in Airflow, its progress (the runs redone, from lineage) follows along.
  const followProgress = async () => {
    try {
      replace(progress, progressBar((await api.plan(id)).progress));
    } catch {
      // the next refresh tries again
    }
  };
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: paths.backfills() }, 'Backfill plans'), ' / '),
    h('h1', {}, plan.name || `Plan ${plan.id.slice(0, 8)}`),
    h('p', { class: 'meta' }, `Saved ${formatTime(plan.createdAt)} · `, progress),
    executionSection(id, followProgress),
    h(
      'p',
      { class: 'muted' },
      'Progress follows the runs that complete after the plan was saved. ',
      h('button', { type: 'button', onclick: () => savedBackfillPage(main, id) }, 'Refresh progress'),
    ),
    planArea,
  );
  await renderPlan(planArea, plan);
}
