// The header's search box: results as you type (GET /api/v1/search), arrow keys to pick, Enter to open.
import { api } from './api.js';
import { h, replace } from './dom.js';
import { go } from './navigation.js';
import { paths } from './paths.js';

export function mountSearch(container) {
  const input = h('input', {
    id: 'search-input',
    type: 'search',
    placeholder: 'Search jobs and datasets',
    autocomplete: 'off',
    role: 'combobox',
    'aria-expanded': 'false',
    'aria-controls': 'search-results',
    'aria-autocomplete': 'list',
  });
  const list = h('ul', { id: 'search-results', role: 'listbox', class: 'search-results', hidden: true });
  const status = h('span', { class: 'visually-hidden', 'aria-live': 'polite' });
  replace(
    container,
    h('label', { for: 'search-input', class: 'visually-hidden' }, 'Search jobs and datasets'),
    input,
    list,
    status,
  );

  let results = [];
  let active = -1;
  let controller = null;
  let timer = null;

  function close() {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  }

  function highlight(index) {
    active = index;
    list.querySelectorAll('[role=option]').forEach((item, i) => item.setAttribute('aria-selected', String(i === index)));
    if (index >= 0) input.setAttribute('aria-activedescendant', `search-result-${index}`);
  }

  function open(result) {
    close();
    input.value = '';
    go(paths.node(result.type, result.namespace, result.name));
  }

  function show(found, total, query) {
    results = found;
    list.replaceChildren(
      ...found.map((result, i) =>
        h(
          'li',
          {
            id: `search-result-${i}`,
            role: 'option',
            'aria-selected': 'false',
            class: 'search-result',
            onmousedown: (event) => {
              event.preventDefault();
              open(result);
            },
          },
          h('span', { class: `kind kind-${result.type.toLowerCase()}` }, result.type === 'JOB' ? 'Job' : 'Dataset'),
          h('span', { class: 'result-name' }, result.name),
          h('span', { class: 'result-namespace' }, result.namespace),
        ),
      ),
    );
    if (!found.length) list.appendChild(h('li', { class: 'search-empty' }, `Nothing matches “${query}”`));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    status.textContent = `${total} results`;
    highlight(-1);
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    const query = input.value.trim();
    if (!query) {
      close();
      return;
    }
    timer = setTimeout(async () => {
      controller?.abort();
      controller = new AbortController();
      try {
        const found = await api.search(query, { limit: 12, signal: controller.signal });
        if (input.value.trim() === query) show(found.results, found.totalCount, query);
      } catch (error) {
        if (error.name !== 'AbortError') show([], 0, query);
      }
    }, 120);
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' && results.length) {
      event.preventDefault();
      highlight((active + 1) % results.length);
    } else if (event.key === 'ArrowUp' && results.length) {
      event.preventDefault();
      highlight(active <= 0 ? results.length - 1 : active - 1);
    } else if (event.key === 'Enter' && results.length) {
      event.preventDefault();
      open(results[Math.max(active, 0)]);
    } else if (event.key === 'Escape') {
      close();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 150));
  input.addEventListener('focus', () => {
    if (results.length && input.value.trim()) {
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
    }
  });
}
