// The console's entry point: sign-in, and the router that shows one page
// per address fragment (#/portfolio, #/ready, #/account/<id>, #/pipeline,
// #/revenue, #/credits). Each page is a module with one `render(params)`
// that returns its sections; a section loads its own data (ui.section).
//
// When a page has finished loading, <main> gets data-page="<name>",
// data-route="<the fragment>" and data-page-ms="<milliseconds from the
// address change to the last figure>": the browser test waits on the route
// and BENCHMARKS.md quotes the time.

import { HEALTH, ApiError, apiKey, call, forgetNames, setApiKey } from './api.js';
import { errorBox, h } from './ui.js';
import * as portfolio from './portfolio.js';
import * as ready from './ready.js';
import * as account from './account.js';
import * as pipeline from './pipeline.js';
import * as revenue from './revenue.js';
import * as credits from './credits.js';

const PAGES = { portfolio, ready, account, pipeline, revenue, credits };

const main = () => document.getElementById('main');

/** '#/account/abc?x=1' → {page: 'account', arg: 'abc', params: {x: '1'}}. */
function parseRoute() {
  const fragment = location.hash.replace(/^#\/?/, '');
  const [path, query] = fragment.split('?');
  const [page, ...rest] = path.split('/');
  return {
    page: page || 'portfolio',
    arg: rest.map(decodeURIComponent).join('/'),
    params: Object.fromEntries(new URLSearchParams(query || '')),
  };
}

/** Whether calls work as things stand: with the stored key, or keyless on loopback. */
async function probe() {
  try {
    await call(HEALTH, 'ListProducts', { pageSize: 1 });
    return null;
  } catch (err) {
    return err;
  }
}

function showSession(keyless) {
  const session = document.getElementById('session');
  if (keyless) {
    session.replaceChildren('No key needed: this server has no API keys (loopback only).');
    return;
  }
  const signOut = h('button', { type: 'button' }, 'Sign out');
  signOut.addEventListener('click', () => {
    setApiKey('');
    location.reload();
  });
  session.replaceChildren('Signed in with an API key (this tab only).', signOut);
}

function signIn(problem) {
  document.getElementById('session').replaceChildren();
  const input = h('input', {
    id: 'api-key', name: 'key', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false', 'aria-describedby': 'api-key-help',
  });
  const form = h('form', { class: 'signin', id: 'signin' },
    h('label', { for: 'api-key' }, 'API key'), input,
    h('p', { id: 'api-key-help', class: 'lede' },
      'A key from `expansion keys create` (exp_…). It is kept in this browser tab only, ',
      'sent as a bearer token to this server, and forgotten when the tab closes.'),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setApiKey(input.value);
    const err = await probe();
    if (err) {
      setApiKey('');
      signIn(err);
    } else {
      start();
    }
  });
  main().replaceChildren(h('h1', {}, 'Sign in'), problem ? errorBox(problem) : null, form);
  main().dataset.page = 'signin';
  input.focus();
}

async function show() {
  const started = performance.now();
  const route = parseRoute();
  const page = PAGES[route.page];
  const root = main();
  delete root.dataset.page;
  delete root.dataset.pageMs;
  delete root.dataset.route;
  for (const link of document.querySelectorAll('nav a')) {
    const current = link.getAttribute('href') === `#/${route.page}`;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!page) {
    root.replaceChildren(h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/portfolio' }, 'Portfolio')));
    root.dataset.page = 'none';
    return;
  }
  forgetNames();
  const { title, lede, sections } = page.render(route.arg, route.params);
  document.title = `${title} · Expansion console`;
  root.replaceChildren(...[h('h1', {}, title), lede ? h('p', { class: 'lede' }, lede) : null, ...sections].filter(Boolean));
  await Promise.all(sections.map((s) => s.ready).filter(Boolean));
  // A later address change may have replaced this page meanwhile.
  if (parseRoute().page === route.page && root.contains(sections[0])) {
    root.dataset.pageMs = String(Math.round(performance.now() - started));
    root.dataset.route = location.hash || '#/portfolio';
    root.dataset.page = route.page;
  }
}

let started = false;

async function start() {
  const err = await probe();
  if (err instanceof ApiError && err.code === 'unauthenticated') {
    signIn(apiKey() ? err : null);
    return;
  }
  showSession(!apiKey());
  if (!started) {
    started = true;
    window.addEventListener('hashchange', () => {
      show();
      main().focus();
    });
  }
  show();
}

start();
