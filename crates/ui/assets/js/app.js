// Coffer web UI: the shell (session, navigation, routing). Views live in ./views/.
import { get, getToken, setToken } from './api.js';
import { loadAcl, clearAcl, can } from './acl.js';
import { h, setChildren, button, errorBox, toast } from './dom.js';
import * as setup from './views/setup.js';
import * as dashboard from './views/dashboard.js';
import * as secrets from './views/secrets.js';
import * as transit from './views/transit.js';
import * as database from './views/database.js';
import * as policies from './views/policies.js';
import * as access from './views/access.js';
import * as identity from './views/identity.js';
import * as system from './views/system.js';

const state = { self: null, cleanup: [] };

/** Runs fn when the current view is left (timers, listeners). */
export function onLeave(fn) {
  state.cleanup.push(fn);
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function currentSelf() {
  return state.self;
}

/** Logs in with a token: checks it, keeps it in sessionStorage only, loads its ACL. */
export async function loginWith(token) {
  const r = await get('auth/token/lookup-self', { token });
  setToken(token);
  state.self = r.data;
  await loadAcl();
  go('#/');
}

export function logout() {
  setToken(null);
  state.self = null;
  clearAcl();
  go('#/login');
}

const NAV = [
  ['#/', 'Dashboard', () => true],
  ['#/secrets', 'Secrets', () => true],
  ['#/policies', 'Policies', () => can('sys/policies/acl', 'list')],
  ['#/access', 'Access', () => can('sys/auth', 'read')],
  ['#/identity', 'Identity', () => can('identity/entity/id', 'list') || can('identity/group/id', 'list')],
  ['#/tokens', 'Tokens', () => true],
  ['#/leases', 'Leases', () => can('sys/leases/lookup/', 'list', 'sudo')],
  ['#/audit', 'Audit devices', () => can('sys/audit', 'read')],
  ['#/plugins', 'Plugins', () => can('sys/plugins/catalog', 'read')],
  ['#/tools', 'Tools', () => ['sys/wrapping/wrap', 'sys/wrapping/unwrap', 'sys/tools/random/32', 'sys/tools/hash/sha2-256'].some((p) => can(p, 'update'))],
];

const ROUTES = [
  [/^\/$/, dashboard.view],
  [/^\/secrets$/, secrets.mountsView],
  [/^\/kv\/([^/]+)\/(.*)$/, secrets.kvView],
  [/^\/kv-new\/([^/]+)\/(.*)$/, secrets.kvNewView],
  [/^\/kv-edit\/([^/]+)\/(.*)$/, secrets.kvEditView],
  [/^\/transit\/([^/]+)$/, transit.keysView],
  [/^\/transit\/([^/]+)\/key\/(.+)$/, transit.keyView],
  [/^\/database\/([^/]+)$/, database.view],
  [/^\/policies$/, policies.listView],
  [/^\/policies\/new$/, policies.editView],
  [/^\/policies\/edit\/(.+)$/, policies.editView],
  [/^\/policies\/view\/(.+)$/, policies.showView],
  [/^\/access$/, access.methodsView],
  [/^\/access\/tune\/(.+)$/, access.tuneView],
  [/^\/access\/userpass\/(.+)$/, access.userpassView],
  [/^\/access\/approle\/(.+)$/, access.approleView],
  [/^\/identity$/, identity.listView],
  [/^\/identity\/entity\/(.+)$/, identity.entityView],
  [/^\/identity\/group\/(.+)$/, identity.groupView],
  [/^\/tokens$/, access.tokensView],
  [/^\/leases$/, system.leasesView],
  [/^\/audit$/, system.auditView],
  [/^\/plugins$/, system.pluginsView],
  [/^\/tools$/, system.toolsView],
];

function renderNav(loggedIn) {
  const nav = document.getElementById('nav');
  const session = document.getElementById('session');
  if (!loggedIn) {
    setChildren(nav);
    nav.hidden = true;
    setChildren(session);
    return;
  }
  nav.hidden = false;
  const here = location.hash.replace(/\?.*$/, '') || '#/';
  setChildren(nav, h('ul', {}, NAV.filter(([, , ok]) => ok()).map(([href, label]) => {
    const active = href === '#/' ? here === '#/' : here === href || here.startsWith(`${href}/`)
      || (href === '#/secrets' && /^#\/(kv|kv-new|kv-edit|transit|database)\//.test(here));
    return h('li', {}, h('a', { href, 'aria-current': active ? 'page' : undefined }, label));
  })));
  const self = state.self || {};
  setChildren(session,
    h('span', { class: 'who' }, self.display_name || 'token',
      self.policies ? h('span', { class: 'muted' }, ` (${self.policies.join(', ')})`) : null),
    button('Log out', logout, 'small', { id: 'logout' }));
}

let routing = 0;
async function route() {
  const my = ++routing;
  for (const fn of state.cleanup.splice(0)) {
    try { fn(); } catch { /* ignore */ }
  }
  const main = document.getElementById('main');
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const query = new URLSearchParams(qs || '');
  let status;
  try {
    status = await get('sys/seal-status', { noToken: true });
  } catch (err) {
    renderNav(false);
    setChildren(main, h('h1', {}, 'Coffer'), errorBox(err));
    return;
  }
  if (my !== routing) return;
  let view;
  let params = [];
  if (!status.initialized) {
    renderNav(false);
    view = setup.initView;
  } else if (status.sealed) {
    renderNav(false);
    view = setup.unsealView;
    params = [status];
  } else if (!getToken()) {
    renderNav(false);
    view = setup.loginView;
  } else {
    if (!state.self) {
      try {
        state.self = (await get('auth/token/lookup-self')).data;
        await loadAcl();
      } catch {
        setToken(null);
        state.self = null;
        return go('#/login');
      }
    }
    if (path === '/login' || path === '/init' || path === '/unseal') return go('#/');
    renderNav(true);
    for (const [re, fn] of ROUTES) {
      const m = path.match(re);
      if (m) {
        view = fn;
        try {
          params = m.slice(1).map((p) => decodeURIComponent(p));
        } catch {
          view = null;
        }
        break;
      }
    }
    if (!view) {
      setChildren(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no page at this address.'));
      return;
    }
  }
  setChildren(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    await view(main, params, query, status);
  } catch (err) {
    if (my !== routing) return;
    // A 403 may mean the token itself expired or was revoked: then start over at the login.
    if (err && err.status === 403 && getToken()) {
      try {
        await get('auth/token/lookup-self');
      } catch {
        setToken(null);
        state.self = null;
        clearAcl();
        toast('The session ended: the token expired or was revoked. Please log in again.');
        return go('#/login');
      }
    }
    setChildren(main, h('h1', {}, 'Something went wrong'), errorBox(err));
  }
  // After a navigation, keyboard and screen reader users land on the new page's heading
  // (unless the view put the focus somewhere in it already).
  if (my === routing && state.navigated && !main.contains(document.activeElement)) {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus();
    }
  }
  state.navigated = true;
}

window.addEventListener('hashchange', route);
route();
