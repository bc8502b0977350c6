// Leases, audit devices, the plugin catalog, and the tools (wrapping, random, hash).
import { get, post, del, list, api } from '../api.js';
import { can } from '../acl.js';
import {
  h, setChildren, table, formCard, button, errorBox, section, encPath, toast, confirmed, jsonBlock, link, secretValue,
} from '../dom.js';
import { go } from '../app.js';

export async function leasesView(main, _p, query) {
  const prefix = query.get('prefix') || '';
  const keys = await list(`sys/leases/lookup/${encPath(prefix)}`).catch((err) => err);
  const here = (p) => `#/leases?prefix=${encodeURIComponent(p)}`;
  setChildren(main, h('h1', {}, 'Leases'),
    h('p', {}, 'Prefix: ', h('code', {}, prefix || '(all)'), prefix ? [' ', link('Up', here(prefix.replace(/[^/]*\/$/, '')))] : null),
    keys instanceof Error ? errorBox(keys) : h('ul', { class: 'tree', 'aria-label': 'Leases' }, keys.length
      ? keys.map((k) => h('li', { class: k.endsWith('/') ? 'folder' : 'leaf' },
        k.endsWith('/') ? link(k, here(prefix + k)) : h('code', {}, prefix + k)))
      : h('li', { class: 'muted' }, 'No leases under this prefix.')),
    h('div', { class: 'grid' },
      can('sys/leases/lookup', 'update') && formCard('Look up a lease', [{ name: 'lease_id', label: 'Lease ID', required: true }], 'Look up', async (v) =>
        (await api('PUT', 'sys/leases/lookup', { lease_id: v.lease_id.trim() })).data),
      can('sys/leases/renew', 'update') && formCard('Renew a lease', [
        { name: 'lease_id', label: 'Lease ID', required: true },
        { name: 'increment', label: 'Increment (e.g. 1h, empty: default)' },
      ], 'Renew', async (v) => {
        const r = await api('PUT', 'sys/leases/renew', { lease_id: v.lease_id.trim(), increment: v.increment || undefined });
        return { lease_id: r.lease_id, lease_duration: r.lease_duration, renewable: r.renewable };
      }),
      can('sys/leases/revoke', 'update') && formCard('Revoke', [
        { name: 'lease_id', label: 'Lease ID or prefix', required: true },
        { name: 'prefix', label: 'Revoke every lease under this prefix', type: 'checkbox' },
      ], 'Revoke', async (v) => {
        if (!confirmed('Revoke? The secrets these leases hold are revoked too.')) return null;
        if (v.prefix) await api('PUT', `sys/leases/revoke-prefix/${encPath(v.lease_id.trim())}`, {});
        else await api('PUT', 'sys/leases/revoke', { lease_id: v.lease_id.trim() });
        return h('p', {}, 'Revoked.');
      }, { danger: true })));
}

export async function auditView(main) {
  const r = await get('sys/audit');
  const devices = Object.entries(r.data || {});
  const msg = h('div', { 'aria-live': 'polite' });
  setChildren(main, h('h1', {}, 'Audit devices'), msg,
    table('!Audit devices', ['Path', 'Type', 'Description', 'Options', 'Actions'], devices.map(([p, d]) => [p, d.type, d.description || '',
      Object.entries(d.options || {}).map(([k, v]) => `${k}=${v}`).join(', '),
      can(`sys/audit/${p.replace(/\/$/, '')}`, 'delete', 'sudo') ? button('Disable', async () => {
        if (!confirmed(`Disable audit device ${p}?`)) return;
        try {
          await del(`sys/audit/${encPath(p.replace(/\/$/, ''))}`);
          go('#/audit');
        } catch (err) {
          setChildren(msg, errorBox(err));
        }
      }, 'small danger', { 'aria-label': `Disable ${p}` }) : '']), 'No audit device is enabled.'),
    can('sys/audit/x', 'update', 'sudo') ? formCard('Enable an audit device', [
      { name: 'path', label: 'Path', required: true, value: 'file' },
      { name: 'type', label: 'Type', type: 'select', options: ['file', 'socket', 'syslog'] },
      { name: 'file_path', label: 'File path (file), address (socket) or tag (syslog)', required: true, placeholder: '/var/log/coffer/audit.log' },
      { name: 'description', label: 'Description' },
    ], 'Enable device', async (v) => {
      const options = v.type === 'file' ? { file_path: v.file_path } : v.type === 'socket' ? { address: v.file_path } : { tag: v.file_path };
      await api('PUT', `sys/audit/${encPath(v.path.replace(/^\/+|\/+$/g, ''))}`, { type: v.type, description: v.description, options });
      toast('Enabled');
      go('#/audit');
    }) : null);
}

export async function pluginsView(main) {
  const r = await get('sys/plugins/catalog');
  const detailed = (r.data && r.data.detailed) || [];
  const msg = h('div', { 'aria-live': 'polite' });
  setChildren(main, h('h1', {}, 'Plugin catalog'), msg,
    table('!Plugins', ['Name', 'Type', 'Version', 'Builtin', 'Actions'], detailed.map((p) => [p.name, p.type, p.version || '', p.builtin ? 'yes' : 'no',
      !p.builtin && can('sys/plugins/reload/backend', 'update', 'sudo') ? button('Reload', async () => {
        try {
          await api('PUT', 'sys/plugins/reload/backend', { plugin: p.name });
          setChildren(msg, h('p', {}, `Reloaded ${p.name}.`));
        } catch (err) {
          setChildren(msg, errorBox(err));
        }
      }, 'small', { 'aria-label': `Reload ${p.name}` }) : '']), 'The catalog is empty.'),
    can('sys/plugins/catalog/secret/x', 'update', 'sudo') ? formCard('Register a plugin', [
      { name: 'type', label: 'Type', type: 'select', options: [['secret', 'secrets engine'], ['auth', 'auth method']] },
      { name: 'name', label: 'Name', required: true },
      { name: 'command', label: 'Command (a file in the plugin directory)', required: true },
      { name: 'sha256', label: 'SHA-256 of the file (hex)', required: true },
      { name: 'version', label: 'Version (e.g. v1.0.0)' },
      { name: 'args', label: 'Arguments (space separated)' },
    ], 'Register', async (v) => {
      await api('PUT', `sys/plugins/catalog/${v.type}/${encodeURIComponent(v.name)}`, {
        command: v.command, sha256: v.sha256.trim(), version: v.version || undefined, args: v.args ? v.args.split(/\s+/) : [],
      });
      toast(`Registered ${v.name}`);
      go('#/plugins');
    }) : null);
}

export async function toolsView(main) {
  setChildren(main, h('h1', {}, 'Tools'),
    h('div', { class: 'grid' },
      can('sys/wrapping/wrap', 'update') && formCard('Wrap', [
        { name: 'data', label: 'Data to wrap (JSON object)', type: 'textarea', rows: 4, value: '{\n  "value": ""\n}', mono: true },
        { name: 'ttl', label: 'Wrapping TTL', value: '30m', required: true },
      ], 'Wrap', async (v) => {
        let data;
        try {
          data = JSON.parse(v.data);
        } catch (e) {
          throw new Error(`The data is not valid JSON: ${e.message}`);
        }
        const r = await api('POST', 'sys/wrapping/wrap', data, { headers: { 'X-Vault-Wrap-TTL': v.ttl } });
        return h('div', {}, h('p', {}, 'Wrapping token ', secretValue(r.wrap_info.token, 'wrapping token')),
          h('p', {}, `Expires in ${r.wrap_info.ttl}s.`));
      }),
      can('sys/wrapping/unwrap', 'update') && formCard('Unwrap', [{ name: 'token', label: 'Wrapping token', type: 'password', required: true }], 'Unwrap', async (v) => {
        const r = await post('sys/wrapping/unwrap', { token: v.token.trim() });
        return jsonBlock(r.data || r.auth || {}, 'Unwrapped data');
      }),
      can('sys/wrapping/lookup', 'update') && formCard('Look up a wrapping token', [{ name: 'token', label: 'Wrapping token', type: 'password', required: true }], 'Look up', async (v) =>
        (await post('sys/wrapping/lookup', { token: v.token.trim() })).data),
      can('sys/wrapping/rewrap', 'update') && formCard('Rewrap', [{ name: 'token', label: 'Wrapping token', type: 'password', required: true }], 'Rewrap', async (v) => {
        const r = await post('sys/wrapping/rewrap', { token: v.token.trim() });
        return h('p', {}, 'New wrapping token ', secretValue(r.wrap_info.token, 'new wrapping token'));
      }),
      can('sys/tools/random/32', 'update') && formCard('Random bytes', [
        { name: 'bytes', label: 'Number of bytes', type: 'number', value: '32', min: 1 },
        { name: 'format', label: 'Format', type: 'select', options: ['base64', 'hex'] },
      ], 'Generate', async (v) => {
        const r = await post(`sys/tools/random/${Number(v.bytes) || 32}`, { format: v.format });
        return h('p', {}, h('code', { class: 'random' }, r.data.random_bytes));
      }),
      can('sys/tools/hash/sha2-256', 'update') && formCard('Hash', [
        { name: 'input', label: 'Input (text)', type: 'textarea', rows: 3 },
        { name: 'algorithm', label: 'Algorithm', type: 'select', value: 'sha2-256', options: ['sha2-224', 'sha2-256', 'sha2-384', 'sha2-512', 'sha3-224', 'sha3-256', 'sha3-384', 'sha3-512'] },
        { name: 'format', label: 'Format', type: 'select', options: ['hex', 'base64'] },
      ], 'Hash', async (v) => {
        const input = btoa(String.fromCharCode(...new TextEncoder().encode(v.input)));
        const r = await post(`sys/tools/hash/${v.algorithm}`, { input, format: v.format });
        return h('p', {}, h('code', { class: 'sum' }, r.data.sum));
      })));

}
