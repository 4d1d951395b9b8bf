// The UI's URLs. Every name is one encoded path segment: names hold '/', ':' and spaces.

const enc = encodeURIComponent;

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const paths = {
  home: () => '/',
  namespaces: () => '/namespaces',
  namespace: (namespace, tab) => `/namespaces/${enc(namespace)}${query({ tab })}`,
  job: (namespace, name) => `/jobs/${enc(namespace)}/${enc(name)}`,
  dataset: (namespace, name) => `/datasets/${enc(namespace)}/${enc(name)}`,
  run: (id) => `/runs/${enc(id)}`,
  lineage: (nodeId, { up, down, collapse } = {}) => `/lineage${query({ nodeId, up, down, collapse: collapse ? '1' : null })}`,
  backfills: () => '/backfills',
  newBackfill: (params = {}) => `/backfills/new${query(params)}`,
  backfill: (id) => `/backfills/${enc(id)}`,
  // A node id of a lineage or plan graph (job:<ns>:<name>) to its page, using the node's own data.
  node: (kind, namespace, name) =>
    kind.toUpperCase() === 'JOB' ? paths.job(namespace, name) : paths.dataset(namespace, name),
};

// The path split into decoded segments: ['jobs', 'postgres://db:5432', 'a/b'].
export function segments(pathname) {
  return pathname
    .split('/')
    .filter((s) => s !== '')
    .map((s) => decodeURIComponent(s));
}
