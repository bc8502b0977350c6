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
  const status = h('div', { 'aria-live': 'polite' });
  const done = async (r) => { await loginWith(r.auth.client_token); };
  // One choice per mounted method that logs in from a browser (token always), each with the
  // form its login takes; without the listing (it needs listing_visibility=unauth), userpass/.
  const forms = [];
  const choices = [];
  const add = (value, label, form) => {
    forms.push([value, form]);
    choices.push(h('option', { value }, label));
  };
  add('token', 'Token', formCard('', [
    { name: 'token', label: 'Token', type: 'password', required: true, autocomplete: 'off' },
  ], 'Log in', async (v) => { await loginWith(v.token.trim()); }));
  const mounts = Object.entries(listed)
    .filter(([, m]) => ['userpass', 'ldap', 'approle', 'cert', 'jwt', 'oidc', 'kubernetes'].includes(m.type))
    .map(([p, m]) => [p.replace(/\/$/, ''), m.type]);
  if (!mounts.length) mounts.push(['userpass', 'userpass']);
  const names = { userpass: 'Username and password', ldap: 'LDAP', approle: 'AppRole', cert: 'TLS certificate', jwt: 'JWT', oidc: 'OIDC provider', kubernetes: 'Kubernetes service account' };
  for (const [mount, type] of mounts) {
    const label = mount === type ? names[type] : `${names[type]} (${mount}/)`;
    let form;
    if (type === 'userpass' || type === 'ldap') {
      form = formCard('', [
        { name: 'username', label: 'Username', required: true, autocomplete: 'username' },
        { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
      ], 'Log in', async (v) => done(await post(`auth/${mount}/login/${encodeURIComponent(v.username)}`,
        { password: v.password }, { noToken: true })));
    } else if (type === 'approle') {
      form = formCard('', [
        { name: 'role_id', label: 'Role ID', required: true, autocomplete: 'off' },
        { name: 'secret_id', label: 'Secret ID', type: 'password', autocomplete: 'off' },
      ], 'Log in', async (v) => done(await post(`auth/${mount}/login`,
        v.secret_id ? { role_id: v.role_id, secret_id: v.secret_id } : { role_id: v.role_id }, { noToken: true })));
    } else if (type === 'oidc') {
      form = formCard('', [
        { name: 'role', label: 'Role (empty: the default role)', autocomplete: 'off' },
      ], 'Continue to the provider', async (v) => {
        // The provider sends the browser back to the address OpenBao's UI uses, which the
        // server turns into this UI's #/oidc/callback/<mount> page. The client nonce ties the
        // callback to this browser tab.
        const nonce = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
        const body = { redirect_uri: `${location.origin}/ui/vault/auth/${mount}/oidc/callback`, client_nonce: nonce };
        if (v.role) body.role = v.role;
        const r = await post(`auth/${mount}/oidc/auth_url`, body, { noToken: true });
        const url = r && r.data && r.data.auth_url;
        if (!url) throw new Error(`The role does not allow this page as a redirect address (${body.redirect_uri}): add it to its allowed_redirect_uris.`);
        // Kept only for a login under way (the callback page takes it out again).
        sessionStorage.setItem(`coffer.oidc.${mount}`, nonce);
        location.assign(url);
      }, { intro: 'Signs you in with your organisation\'s identity provider.' });
    } else if (type === 'kubernetes') {
      form = formCard('', [
        { name: 'role', label: 'Role', required: true, autocomplete: 'off' },
        { name: 'jwt', label: 'Service account token', type: 'password', required: true, autocomplete: 'off' },
      ], 'Log in', async (v) => done(await post(`auth/${mount}/login`,
        { role: v.role, jwt: v.jwt.trim() }, { noToken: true })));
    } else if (type === 'jwt') {
      form = formCard('', [
        { name: 'role', label: 'Role (empty: the default role)', autocomplete: 'off' },
        { name: 'jwt', label: 'JWT', type: 'password', required: true, autocomplete: 'off' },
      ], 'Log in', async (v) => done(await post(`auth/${mount}/login`,
        v.role ? { role: v.role, jwt: v.jwt.trim() } : { jwt: v.jwt.trim() }, { noToken: true })));
    } else {
      form = formCard('', [
        { name: 'name', label: 'Trusted certificate name (optional)', autocomplete: 'off' },
      ], 'Log in with my certificate', async (v) => done(await post(`auth/${mount}/login`,
        v.name ? { name: v.name } : {}, { noToken: true })), {
        intro: 'Uses the client certificate your browser presents on this HTTPS connection.',
      });
    }
    form.dataset.mount = mount;
    add(`${type}:${mount}`, label, form);
  }
  // Only the chosen method's form is in the page.
  const slot = h('div', {}, forms[0][1]);
  const sel = h('select', { id: 'login-method', onchange: () => {
    setChildren(slot, forms.find(([v]) => v === sel.value)[1]);
  } }, choices);
  setChildren(main,
    h('h1', {}, 'Log in to Coffer'),
    h('div', { class: 'card narrow' },
      h('div', { class: 'field' }, h('label', { for: 'login-method' }, 'Method'), sel),
      slot, status));
  if (location.hash !== '#/login' && location.hash !== '') history.replaceState(null, '', '#/login');
  const first = forms[0][1].querySelector('input');
  if (first) first.focus();
}

// Back from the OIDC provider: trade its code for a Coffer token at the mount's callback.
export async function oidcCallbackView(main, [mount], query) {
  const key = `coffer.oidc.${mount}`;
  const nonce = sessionStorage.getItem(key);
  sessionStorage.removeItem(key);
  const q = {};
  for (const name of ['state', 'code', 'id_token']) if (query.get(name)) q[name] = query.get(name);
  if (nonce) q.client_nonce = nonce;
  setChildren(main, h('h1', {}, 'Signing in…'));
  try {
    const r = await get(`auth/${mount}/oidc/callback`, { noToken: true, query: q });
    await loginWith(r.auth.client_token);
  } catch (err) {
    setChildren(main,
      h('h1', {}, 'Sign-in failed'),
      h('div', { class: 'card narrow', role: 'alert' }, h('p', {}, err.message)),
      h('p', {}, h('a', { href: '#/login' }, 'Back to the login page')));
  }
}
