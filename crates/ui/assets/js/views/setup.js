// Initialise, unseal and log in.
import { api, post, get } from '../api.js';
import { h, setChildren, formCard, button, copyText } from '../dom.js';
import { go, loginWith } from '../app.js';

export async function initView(main) {
  setChildren(main,
    h('h1', {}, 'Initialise Coffer'),
    h('p', {}, 'This server has no keys yet. Choose how many unseal key shares to create and how many of them are needed to unseal.'),
    formCard('Key settings', [
      { name: 'shares', label: 'Key shares', type: 'number', value: '5', min: 1, required: true },
      { name: 'threshold', label: 'Key threshold', type: 'number', value: '3', min: 1, required: true },
    ], 'Initialise', async (v) => {
      const r = await api('PUT', 'sys/init', { secret_shares: Number(v.shares), secret_threshold: Number(v.threshold) }, { noToken: true });
      showKeys(main, r);
    }));
}

function showKeys(main, r) {
  const blob = new Blob([JSON.stringify({ keys: r.keys, keys_base64: r.keys_base64, root_token: r.root_token }, null, 2)],
    { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  setChildren(main,
    h('h1', {}, 'Coffer is initialised'),
    h('div', { class: 'warning', role: 'note' },
      'These unseal keys and the root token are shown only once. Store each key with a different person, then continue.'),
    h('section', { class: 'card', 'aria-label': 'Unseal keys' },
      h('h2', {}, 'Unseal keys'),
      h('ol', { class: 'keys' }, r.keys.map((k, i) => h('li', {},
        h('code', { class: 'key-share' }, k), ' ',
        button('Copy', () => copyText(k), 'small', { 'aria-label': `Copy key ${i + 1}` })))),
      h('h2', {}, 'Root token'),
      h('p', {}, h('code', { class: 'root-token' }, r.root_token), ' ',
        button('Copy', () => copyText(r.root_token), 'small', { 'aria-label': 'Copy the root token' })),
      h('div', { class: 'actions' },
        h('a', { href: url, download: 'coffer-keys.json', class: 'button' }, 'Download keys (JSON)'),
        button('Continue to unseal', () => go('#/unseal'), 'primary'))));
}

export async function unsealView(main, _params, _query, status) {
  const progress = h('progress', { max: status.t, value: status.progress, 'aria-label': 'Unseal progress' });
  const label = h('p', { id: 'unseal-progress' }, `${status.progress} of ${status.t} key shares entered.`);
  setChildren(main,
    h('h1', {}, 'Unseal Coffer'),
    h('p', {}, `Coffer is sealed. Enter ${status.t} of the ${status.n} unseal key shares, one at a time.`),
    progress, label,
    formCard('Unseal key', [
      { name: 'key', label: 'Unseal key share', type: 'password', required: true, autocomplete: 'off' },
    ], 'Unseal', async (v, form) => {
      const r = await api('PUT', 'sys/unseal', { key: v.key.trim() }, { noToken: true });
      form.reset();
      if (!r.sealed) return go('#/login');
      progress.value = r.progress;
      label.textContent = `${r.progress} of ${r.t} key shares entered.`;
      return h('p', {}, 'Key share accepted.');
    }, {
      extraButtons: button('Start over', async () => {
        await api('PUT', 'sys/unseal', { reset: true }, { noToken: true });
        go('#/unseal');
      }),
    }));
}

export async function loginView(main) {
  let listed = {};
  try {
    const r = await get('sys/internal/ui/mounts', { noToken: true });
    listed = (r.data && r.data.auth) || {};
  } catch { /* nothing listed */ }
  const methods = [['token', 'Token'], ['userpass', 'Username and password']];
  const mountDefault = Object.entries(listed).find(([, m]) => m.type === 'userpass');
  const status = h('div', { 'aria-live': 'polite' });
  const tokenForm = formCard('', [
    { name: 'token', label: 'Token', type: 'password', required: true, autocomplete: 'off' },
  ], 'Log in', async (v) => {
    await loginWith(v.token.trim());
  });
  const upForm = formCard('', [
    { name: 'mount', label: 'Mount path', value: mountDefault ? mountDefault[0].replace(/\/$/, '') : 'userpass', required: true },
    { name: 'username', label: 'Username', required: true, autocomplete: 'username' },
    { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
  ], 'Log in', async (v) => {
    const m = v.mount.replace(/^\/+|\/+$/g, '');
    const r = await post(`auth/${m}/login/${encodeURIComponent(v.username)}`, { password: v.password }, { noToken: true });
    await loginWith(r.auth.client_token);
  });
  upForm.hidden = true;
  const sel = h('select', { id: 'login-method', onchange: () => {
    tokenForm.hidden = sel.value !== 'token';
    upForm.hidden = sel.value !== 'userpass';
  } }, methods.map(([v, l]) => h('option', { value: v }, l)));
  setChildren(main,
    h('h1', {}, 'Log in to Coffer'),
    h('div', { class: 'card narrow' },
      h('div', { class: 'field' }, h('label', { for: 'login-method' }, 'Method'), sel),
      tokenForm, upForm, status));
  if (location.hash !== '#/login' && location.hash !== '') history.replaceState(null, '', '#/login');
  const first = tokenForm.querySelector('input');
  if (first) first.focus();
}
