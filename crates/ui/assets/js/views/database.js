// Database: connections (add, reset, rotate root), dynamic roles with a "generate credentials"
// button, static roles with their current credentials and "rotate now".
import { get, post, list } from '../api.js';
import { can } from '../acl.js';
import { h, setChildren, formCard, link, section, table, toast, button, errorBox, secretValue } from '../dom.js';
import { go } from '../app.js';

const PLUGINS = ['postgresql-database-plugin', 'mysql-database-plugin'];

export async function view(main, [mount]) {
  const enc = encodeURIComponent;
  const [conns, roles, statics] = await Promise.all([
    list(`${mount}config`).catch(() => []),
    list(`${mount}roles`).catch(() => []),
    list(`${mount}static-roles`).catch(() => []),
  ]);
  const details = await Promise.all(conns.map((c) => get(`${mount}config/${enc(c)}`).then((r) => r.data).catch(() => ({}))));
  const out = h('div', { class: 'form-status', 'aria-live': 'polite', id: 'db-result' });
  const act = (label, fn, aria) => button(label, async () => {
    try {
      setChildren(out, await fn());
    } catch (err) {
      setChildren(out, errorBox(err));
    }
  }, 'small', { 'aria-label': aria });
  const connRows = conns.map((c, i) => [c, details[i].plugin_name || '', (details[i].allowed_roles || []).join(', ') || '(none)',
    h('span', {},
      can(`${mount}reset/${c}`, 'update') ? act('Reset', async () => {
        await post(`${mount}reset/${enc(c)}`);
        return h('p', {}, `Connection ${c} reset.`);
      }, `Reset ${c}`) : null,
      can(`${mount}rotate-root/${c}`, 'update') ? act('Rotate root', async () => {
        await post(`${mount}rotate-root/${enc(c)}`);
        return h('p', {}, `Root credentials of ${c} rotated: only the server knows them now.`);
      }, `Rotate root credentials of ${c}`) : null)]);
  const roleRows = roles.map((r) => [r, can(`${mount}creds/${r}`, 'read') ? act('Generate credentials', async () => {
    const c = await get(`${mount}creds/${enc(r)}`);
    return h('div', { class: 'card' }, h('h2', {}, `Credentials for ${r}`),
      h('p', {}, 'Username: ', h('code', {}, c.data.username)),
      h('p', {}, 'Password: ', secretValue(c.data.password, 'password')),
      h('p', { class: 'muted' }, `Lease ${c.lease_id}, ${c.lease_duration} s, renewable: ${c.renewable}`));
  }, `Generate credentials for ${r}`) : '']);
  const staticRows = statics.map((r) => [r, h('span', {},
    can(`${mount}static-creds/${r}`, 'read') ? act('Show credentials', async () => {
      const c = (await get(`${mount}static-creds/${enc(r)}`)).data;
      return h('div', { class: 'card' }, h('h2', {}, `Credentials of ${r}`),
        h('p', {}, 'Username: ', h('code', {}, c.username)),
        h('p', {}, 'Password: ', secretValue(c.password, 'password')),
        h('p', { class: 'muted' }, `Rotated ${c.last_vault_rotation}; next rotation in ${c.ttl} s`));
    }, `Show credentials of ${r}`) : null,
    can(`${mount}rotate-role/${r}`, 'update') ? act('Rotate now', async () => {
      await post(`${mount}rotate-role/${enc(r)}`);
      return h('p', {}, `Password of ${r} rotated.`);
    }, `Rotate ${r} now`) : null)]);
  setChildren(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('Secrets', '#/secrets')), h('li', {}, h('span', { 'aria-current': 'page' }, mount)))),
    h('h1', {}, `Databases in ${mount}`),
    section('Connections', table('!Connections', ['Name', 'Plugin', 'Allowed roles', 'Actions'], connRows, 'No connections yet.')),
    section('Roles', table('!Dynamic roles', ['Role', 'Credentials'], roleRows, 'No dynamic roles yet.')),
    section('Static roles', table('!Static roles', ['Role', 'Actions'], staticRows, 'No static roles yet.')),
    out,
    h('div', { class: 'grid' },
      can(`${mount}config/x`, 'create', 'update') ? formCard('Add a connection', [
        { name: 'name', label: 'Connection name', required: true },
        { name: 'plugin_name', label: 'Plugin', type: 'select', value: PLUGINS[0], options: PLUGINS },
        { name: 'connection_url', label: 'Connection URL', required: true, placeholder: 'postgresql://{{username}}:{{password}}@host:5432/db' },
        { name: 'username', label: 'Root username' },
        { name: 'password', label: 'Root password', type: 'password' },
        { name: 'allowed_roles', label: 'Allowed roles (comma-separated globs)', placeholder: '*' },
        { name: 'verify_connection', label: 'Connect now to check', type: 'checkbox', value: true },
      ], 'Save connection', async (v) => {
        await post(`${mount}config/${enc(v.name)}`, {
          plugin_name: v.plugin_name, connection_url: v.connection_url, username: v.username || undefined,
          password: v.password || undefined, allowed_roles: v.allowed_roles, verify_connection: v.verify_connection,
        });
        toast(`Saved connection ${v.name}`);
        go(location.hash);
      }) : null,
      can(`${mount}roles/x`, 'create', 'update') ? formCard('Add a role', [
        { name: 'name', label: 'Role name', required: true },
        { name: 'db_name', label: 'Connection', type: 'select', value: conns[0] || '', options: conns },
        { name: 'creation_statements', label: 'Creation statements (run in one transaction)', type: 'textarea', rows: 4, mono: true,
          placeholder: "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" },
        { name: 'default_ttl', label: 'Default TTL', placeholder: '1h' },
        { name: 'max_ttl', label: 'Maximum TTL', placeholder: '24h' },
      ], 'Save role', async (v) => {
        await post(`${mount}roles/${enc(v.name)}`, {
          db_name: v.db_name, creation_statements: [v.creation_statements],
          default_ttl: v.default_ttl || undefined, max_ttl: v.max_ttl || undefined,
        });
        toast(`Saved role ${v.name}`);
        go(location.hash);
      }) : null));
}
