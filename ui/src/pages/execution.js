// Running a saved plan through Airflow from its page: a dry run, Start, then each level and DAG live (pending /
// running / done / failed), pause, resume and cancel, and the audit log of every call made to Airflow.
import { api, ApiError } from '../api.js';
import { errorBox, formatTime, h, replace } from '../dom.js';

const POLL_MS = 3000;
const LIVE = new Set(['running', 'paused', 'cancelling']);

function statusTag(status) {
  return h('span', { class: `tag run-status status-${status}` }, status);
}

function dryRunList(dry) {
  return h(
    'div',
    { class: 'dry-run' },
    h('h4', {}, 'Dry run: the calls Headwater would make, in order'),
    dry.calls.length
      ? h(
          'ol',
          {},
          dry.calls.map((c) =>
            h(
              'li',
              {},
              h('p', {}, `Level ${c.level} · ${c.dagId}: `, h('code', {}, `${c.method} ${c.url}`)),
              c.note ? h('p', { class: 'muted' }, c.note) : null,
              h('pre', {}, JSON.stringify(c.body, null, 2)),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'Nothing to call.'),
    dry.manual.length ? h('p', { class: 'warning' }, `Re-run by hand (Headwater waits for them): ${dry.manual.join(', ')}`) : null,
  );
}

function levelsView(execution) {
  return h(
    'ol',
    { class: 'run-levels', start: '0' },
    execution.levels.map((level) =>
      h(
        'li',
        { class: 'run-level', dataset: { level: String(level.level), status: level.status } },
        h('h4', {}, `Level ${level.level} `, statusTag(level.status)),
        h(
          'ul',
          {},
          level.units.map((u) =>
            h(
              'li',
              { class: 'run-unit', dataset: { dagId: u.dagId || '', status: u.status } },
              h('strong', {}, u.dagId ? `DAG ${u.dagId}` : 'Steps re-run by hand'),
              u.mode && u.dagId ? h('span', { class: 'muted' }, ` (${u.mode})`) : null,
              ' ',
              statusTag(u.status),
              h('span', { class: 'muted' }, ` ${u.stepsDone}/${u.steps.length} steps redone`),
              u.tasks.length ? h('span', { class: 'muted' }, ` · tasks ${u.tasks.join(', ')}`) : null,
              u.error ? h('p', { class: 'warning' }, u.error) : null,
              u.link ? h('p', {}, h('a', { href: u.link, target: '_blank', rel: 'noopener' }, 'Open in Airflow')) : null,
            ),
          ),
        ),
      ),
    ),
  );
}

function auditView(execution) {
  return h(
    'details',
    { class: 'audit' },
    h('summary', {}, `Audit log (${execution.audit.length})`),
    h(
      'table',
      { class: 'list' },
      h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'Call', 'Answer', 'Note'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        execution.audit.map((a) =>
          h(
            'tr',
            {},
            h('td', {}, formatTime(a.at)),
            h('td', {}, a.actor),
            h('td', {}, a.action),
            h(
              'td',
              {},
              a.method ? h('code', {}, `${a.method} ${a.url}`) : '',
              a.request ? h('pre', {}, JSON.stringify(a.request, null, 2)) : null,
            ),
            h('td', {}, a.statusCode ?? '', a.response ? h('pre', {}, JSON.stringify(a.response, null, 2).slice(0, 2000)) : null),
            h('td', {}, a.message || ''),
          ),
        ),
      ),
    ),
  );
}

// The section of a saved plan's page; refreshes itself while the plan runs, and calls onChange (the plan's
// progress) each time.
export function executionSection(planId, onChange = () => {}) {
  const section = h('section', { class: 'execution', 'aria-label': 'Run in Airflow' });
  let timer = null;

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (section.isConnected) refresh();
    }, POLL_MS);
  };

  const act = async (call) => {
    try {
      await call();
      await refresh();
    } catch (error) {
      section.append(errorBox(error));
    }
  };

  const notStarted = () => {
    const output = h('div', {});
    replace(
      section,
      h('h3', {}, 'Run in Airflow'),
      h('p', { class: 'muted' }, 'Headwater runs the plan level by level through the Airflow connection of each DAG’s namespace; a level starts when the previous one is redone.'),
      h(
        'p',
        {},
        h('button', { type: 'button', class: 'start-run', onclick: () => act(() => api.runPlan(planId, {})) }, 'Start'),
        ' ',
        h(
          'button',
          {
            type: 'button',
            class: 'dry-run-button',
            onclick: async () => {
              try {
                replace(output, dryRunList(await api.runPlan(planId, { dryRun: true })));
              } catch (error) {
                replace(output, errorBox(error));
              }
            },
          },
          'Dry run',
        ),
      ),
      output,
    );
  };

  const show = (execution) => {
    const live = LIVE.has(execution.status);
    const buttons = [];
    if (execution.status === 'running') buttons.push(h('button', { type: 'button', onclick: () => act(() => api.controlPlan(planId, 'pause')) }, 'Pause'));
    if (execution.status === 'paused') buttons.push(h('button', { type: 'button', onclick: () => act(() => api.controlPlan(planId, 'resume')) }, 'Resume'));
    if (execution.status === 'running' || execution.status === 'paused') {
      buttons.push(' ', h('button', { type: 'button', class: 'danger', onclick: () => act(() => api.controlPlan(planId, 'cancel')) }, 'Cancel'));
    }
    replace(
      section,
      h('h3', {}, 'Run in Airflow ', statusTag(execution.status)),
      h('p', { class: 'meta' }, `Started ${formatTime(execution.startedAt)} by ${execution.startedBy}`, execution.finishedAt ? ` · finished ${formatTime(execution.finishedAt)}` : ''),
      execution.reason ? h('p', { class: 'warning run-reason' }, execution.reason, execution.link ? [' · ', h('a', { href: execution.link, target: '_blank', rel: 'noopener' }, 'see it in Airflow')] : null) : null,
      buttons.length ? h('p', {}, buttons) : null,
      levelsView(execution),
      auditView(execution),
    );
    if (live) schedule();
  };

  const refresh = async () => {
    try {
      const execution = await api.execution(planId);
      show(execution);
      onChange(execution);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) notStarted();
      else replace(section, h('h3', {}, 'Run in Airflow'), errorBox(error));
    }
  };

  refresh();
  return section;
}
