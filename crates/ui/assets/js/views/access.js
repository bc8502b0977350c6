// Access: auth methods (enable, disable, tune), userpass users, AppRole roles, tokens and a
// capabilities checker.
import { get, post, del, list, api } from '../api.js';
import { can } from '../acl.js';
import {
  h, setChildren, table, formCard, button, link, errorBox, secretValue, section, encPath, toast, confirmed, jsonBlock,
} from '../dom.js';
import { go, currentSelf } from '../app.js';

const trim = (p) => p.replace(/^\/+|\/+$/g, '');
const csv = (s) => (s || '').split(',').map((x) => x.trim()).filter(Boolean);

export async function methodsView(main) {
  const r = await get('sys/auth');
  const mounts = Object.entries(r.data || r).filter(([, m]) => m && typeof m === 'object' && m.type);
  const msg = h('div', { 'aria-live': 'polite' });
  const rows = mounts.map(([p, m]) => {
    const manage = m.type === 'userpass' || m.type === 'approle'
      ? link(`Manage ${p}`, `#/access/${m.type}/${encodeURIComponent(trim(p))}`) : null;
    return [p, m.type, m.description || '', m.accessor || '',
      h('span', { class: 'actions' }, manage,
        can(`sys/auth/${trim(p)}/tune`, 'update') ? link(`Tune ${p}`, `#/access/tune/${encodeURIComponent(trim(p))}`) : null,
        m.type !== 'token' && can(`sys/auth/${trim(p)}`, 'delete') ? button('Disable', async () => {
          if (!confirmed(`Disable ${p}? Its users and roles are deleted and its tokens revoked.`)) return;
          try {
            await del(`sys/auth/${encPath(trim(p))}`);
            toast(`Disabled ${p}`);
            go('#/access');
          } catch (err) {
            setChildren(msg, errorBox(err));
          }
        }, 'small danger', { 'aria-label': `Disable ${p}` }) : null)];
  });
  setChildren(main, h('h1', {}, 'Auth methods'), msg,
    table('!Auth methods', ['Path', 'Type', 'Description', 'Accessor', 'Actions'], rows),
    can('sys/auth/example', 'create', 'update', 'sudo') ? formCard('Enable an auth method', [
      { name: 'path', label: 'Path', required: true, placeholder: 'userpass' },
      { name: 'type', label: 'Type', type: 'select', options: [['userpass', 'Username and password'], ['approle', 'AppRole']] },
      { name: 'description', label: 'Description' },
    ], 'Enable method', async (v) => {
      await post(`sys/auth/${encPath(trim(v.path || v.type))}`, { type: v.type, description: v.description });
      toast(`Enabled ${trim(v.path || v.type)}/`);
      go('#/access');
    }) : null);
}

export async function tuneView(main, [path]) {
  const t = (await get(`sys/auth/${encPath(path)}/tune`)).data;
  setChildren(main, h('h1', {}, `Tune ${path}/`),
    formCard('Settings', [
      { name: 'description', label: 'Description', value: t.description || '' },
      { name: 'default_lease_ttl', label: 'Default lease TTL (seconds or duration, 0: system default)', value: String(t.default_lease_ttl ?? 0) },
      { name: 'max_lease_ttl', label: 'Maximum lease TTL', value: String(t.max_lease_ttl ?? 0) },
      { name: 'listing_visibility', label: 'Listed on the login page', type: 'select', value: t.listing_visibility || '', options: [['', 'hidden'], ['unauth', 'listed']] },
    ], 'Save', async (v) => {
      await post(`sys/auth/${encPath(path)}/tune`, v);
      toast('Saved');
      return h('p', {}, 'Saved.');
    }),
    h('p', {}, link('Back to auth methods', '#/access')));
}

export async function userpassView(main, [mount]) {
  const base = `auth/${encPath(mount)}`;
  const users = await list(`${base}/users`).catch(() => []);
  const msg = h('div', { 'aria-live': 'polite' });
  setChildren(main, h('h1', {}, `Users of ${mount}/`), msg,
    table('!Users', ['Username', 'Actions'], users.map((u) => [u,
      can(`${base}/users/${u}`, 'delete') ? button('Delete', async () => {
        if (!confirmed(`Delete user ${u}?`)) return;
        try {
          await del(`${base}/users/${encodeURIComponent(u)}`);
          go(location.hash);
        } catch (err) {
          setChildren(msg, errorBox(err));
        }
      }, 'small danger', { 'aria-label': `Delete user ${u}` }) : '']), 'No users yet.'),
    formCard('Create or update a user', [
      { name: 'username', label: 'Username', required: true },
      { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password' },
      { name: 'policies', label: 'Policies (comma separated)' },
      { name: 'ttl', label: 'Token TTL (e.g. 1h, empty: mount default)' },
    ], 'Save user', async (v) => {
      const body = { password: v.password, token_policies: csv(v.policies) };
      if (v.ttl) body.token_ttl = v.ttl;
      await post(`${base}/users/${encodeURIComponent(v.username)}`, body);
      toast(`Saved user ${v.username}`);
      go(location.hash);
    }),
    h('p', {}, link('Back to auth methods', '#/access')));
}

export async function approleView(main, [mount]) {
  const base = `auth/${encPath(mount)}`;
  const roles = await list(`${base}/role`).catch(() => []);
  const out = h('div', { 'aria-live': 'polite' });
  const show = (title, node) => setChildren(out, h('h2', {}, title), node);
  const guard = (fn) => async () => {
    try {
      await fn();
    } catch (err) {
      setChildren(out, errorBox(err));
    }
  };
  setChildren(main, h('h1', {}, `AppRole roles of ${mount}/`),
    table('!Roles', ['Role', 'Actions'], roles.map((r) => [r, h('span', { class: 'actions' },
      button('Role ID', guard(async () => {
        const x = await get(`${base}/role/${encodeURIComponent(r)}/role-id`);
        show(`Role ID of ${r}`, h('p', {}, h('code', {}, x.data.role_id)));
      }), 'small', { 'aria-label': `Role ID of ${r}` }),
      button('New secret ID', guard(async () => {
        const x = await post(`${base}/role/${encodeURIComponent(r)}/secret-id`, {});
        show(`New secret ID for ${r}`, h('p', {}, secretValue(x.data.secret_id, 'secret ID'), ' accessor ', h('code', {}, x.data.secret_id_accessor)));
      }), 'small', { 'aria-label': `New secret ID for ${r}` }),
      button('Delete', guard(async () => {
        if (!confirmed(`Delete role ${r}?`)) return;
        await del(`${base}/role/${encodeURIComponent(r)}`);
        go(location.hash);
      }), 'small danger', { 'aria-label': `Delete role ${r}` }))]), 'No roles yet.'),
    out,
    formCard('Create or update a role', [
      { name: 'role', label: 'Role name', required: true },
      { name: 'policies', label: 'Policies (comma separated)' },
      { name: 'token_ttl', label: 'Token TTL (e.g. 1h)' },
      { name: 'secret_id_ttl', label: 'Secret ID TTL (e.g. 24h, empty: never expires)' },
      { name: 'secret_id_num_uses', label: 'Secret ID uses (0: unlimited)', type: 'number', value: '0', min: 0 },
    ], 'Save role', async (v) => {
      const body = { token_policies: csv(v.policies), secret_id_num_uses: Number(v.secret_id_num_uses || 0) };
      if (v.token_ttl) body.token_ttl = v.token_ttl;
      if (v.secret_id_ttl) body.secret_id_ttl = v.secret_id_ttl;
      await post(`${base}/role/${encodeURIComponent(v.role)}`, body);
      toast(`Saved role ${v.role}`);
      go(location.hash);
    }),
    h('p', {}, link('Back to auth methods', '#/access')));
}

export async function tokensView(main) {
  const self = currentSelf() || {};
  const parts = [h('h1', {}, 'Tokens')];
  parts.push(section('This token', table('!This token', ['Property', 'Value'], [
    ['Display name', self.display_name || ''], ['Policies', (self.policies || []).join(', ')],
    ['Accessor', self.accessor || ''], ['TTL', self.ttl ? `${self.ttl}s` : 'never expires'],
    ['Type', self.type || 'service']])));
  if (can('auth/token/create', 'update', 'create')) {
    parts.push(formCard('Create a token', [
      { name: 'policies', label: 'Policies (comma separated)' },
      { name: 'ttl', label: 'TTL (e.g. 1h, empty: default)' },
      { name: 'display_name', label: 'Display name' },
      { name: 'num_uses', label: 'Number of uses (0: unlimited)', type: 'number', value: '0', min: 0 },
      { name: 'no_default_policy', label: 'Without the default policy', type: 'checkbox' },
      { name: 'orphan', label: 'Orphan (not revoked with this token)', type: 'checkbox' },
    ], 'Create token', async (v) => {
      const body = { policies: csv(v.policies), display_name: v.display_name, no_default_policy: v.no_default_policy, num_uses: Number(v.num_uses || 0) };
      if (v.ttl) body.ttl = v.ttl;
      const r = await post(v.orphan ? 'auth/token/create-orphan' : 'auth/token/create', body);
      return h('div', { class: 'result' },
        h('p', {}, 'Token ', secretValue(r.auth.client_token, 'new token')),
        h('p', {}, 'Accessor ', h('code', {}, r.auth.accessor)),
        h('p', {}, `Policies: ${(r.auth.policies || []).join(', ')}`));
    }));
  }
  if (can('auth/token/lookup', 'update') || can('auth/token/lookup-accessor', 'update')) {
    parts.push(formCard('Look up a token', [
      { name: 'value', label: 'Token or accessor', type: 'password', required: true },
      { name: 'kind', label: 'It is', type: 'select', options: [['token', 'a token'], ['accessor', 'an accessor']] },
    ], 'Look up', async (v) => {
      const r = v.kind === 'token' ? await post('auth/token/lookup', { token: v.value.trim() })
        : await post('auth/token/lookup-accessor', { accessor: v.value.trim() });
      const d = { ...r.data };
      delete d.id;
      return jsonBlock(d, 'Token properties');
    }));
  }
  if (can('auth/token/revoke', 'update') || can('auth/token/revoke-accessor', 'update')) {
    parts.push(formCard('Revoke a token', [
      { name: 'value', label: 'Token or accessor', type: 'password', required: true },
      { name: 'kind', label: 'It is', type: 'select', options: [['token', 'a token'], ['accessor', 'an accessor']] },
    ], 'Revoke', async (v) => {
      if (!confirmed('Revoke this token and its children?')) return null;
      if (v.kind === 'token') await post('auth/token/revoke', { token: v.value.trim() });
      else await post('auth/token/revoke-accessor', { accessor: v.value.trim() });
      return h('p', {}, 'Revoked.');
    }, { danger: true }));
  }
  parts.push(formCard('Check capabilities', [
    { name: 'path', label: 'Path', required: true, placeholder: 'secret/data/app/config' },
    ...(can('sys/capabilities', 'update') ? [{ name: 'token', label: 'Token (empty: this token)', type: 'password' }] : []),
  ], 'Check', async (v) => {
    const r = v.token ? await post('sys/capabilities', { token: v.token.trim(), paths: [v.path.trim()] })
      : await post('sys/capabilities-self', { paths: [v.path.trim()] });
    const caps = (r.data && r.data[v.path.trim()]) || r.capabilities || [];
    return h('p', { class: 'caps' }, `Capabilities on ${v.path.trim()}: `, h('strong', {}, caps.join(', ')));
  }));
  setChildren(main, parts.slice(0, 2), h('div', { class: 'grid wide' }, parts.slice(2)));

}
