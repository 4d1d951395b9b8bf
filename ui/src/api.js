// The Headwater API as the UI uses it: the Marquez REST API plus backfill planning and recent failures.

const enc = encodeURIComponent;
const KEY_STORAGE = 'headwater.apiKey';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || '';
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY_STORAGE, value);
  else localStorage.removeItem(KEY_STORAGE);
}

async function request(method, path, { params, body, signal } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, item);
  }
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const message = data?.message || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, response.status === 401 ? `${message} (set an API key on the Backfills page)` : message);
  }
  return data;
}

const get = (path, params, options) => request('GET', path, { params, ...options });
const post = (path, body) => request('POST', path, { body });

const ns = (namespace) => `/api/v1/namespaces/${enc(namespace)}`;

export const api = {
  namespaces: () => get('/api/v1/namespaces'),
  jobs: (namespace, { limit = 50, offset = 0 } = {}) => get(`${ns(namespace)}/jobs`, { limit, offset }),
  datasets: (namespace, { limit = 50, offset = 0 } = {}) => get(`${ns(namespace)}/datasets`, { limit, offset }),
  job: (namespace, name) => get(`${ns(namespace)}/jobs/${enc(name)}`),
  jobChildren: (namespace, name, { limit = 100, offset = 0 } = {}) =>
    get(`${ns(namespace)}/jobs/${enc(name)}/children`, { limit, offset }),
  jobRuns: (namespace, name, { limit = 50, offset = 0 } = {}) =>
    get(`${ns(namespace)}/jobs/${enc(name)}/runs`, { limit, offset }),
  dataset: (namespace, name) => get(`${ns(namespace)}/datasets/${enc(name)}`),
  datasetVersions: (namespace, name, { limit = 20, offset = 0 } = {}) =>
    get(`${ns(namespace)}/datasets/${enc(name)}/versions`, { limit, offset }),
  run: (id) => get(`/api/v1/jobs/runs/${enc(id)}`),
  search: (q, { limit = 10, signal } = {}) => get('/api/v1/search', { q, limit }, { signal }),
  lineage: (nodeId, { depth, direction, maxNodes }) => get('/api/v1/lineage', { nodeId, depth, direction, maxNodes }),
  columnLineage: (nodeId, { depth = 20, withDownstream = false } = {}) =>
    get('/api/v1/column-lineage', { nodeId, depth, withDownstream }),
  recentFailures: (limit = 10) => get('/api/v1/runs/failures', { limit }),
  impact: (params) => get('/api/v1/impact', params),
  impactOf: (request) => post('/api/v1/impact', request),
  incidents: ({ status, namespace, kind, limit = 20, offset = 0 } = {}) =>
    get('/api/v1/incidents', { status, namespace, kind, limit, offset }),
  previewPlan: (request) => post('/api/v1/backfills/preview', request),
  savePlan: (request) => post('/api/v1/backfills', request),
  plans: ({ limit = 50, offset = 0 } = {}) => get('/api/v1/backfills', { limit, offset }),
  plan: (id) => get(`/api/v1/backfills/${enc(id)}`),
  execution: (id) => get(`/api/v1/backfills/${enc(id)}/execution`),
  runPlan: (id, body) => post(`/api/v1/backfills/${enc(id)}/run`, body),
  controlPlan: (id, action, body = {}) => post(`/api/v1/backfills/${enc(id)}/${action}`, body),
};

export function nodeId(kind, namespace, name) {
  return `${kind.toLowerCase()}:${namespace}:${name}`;
}
