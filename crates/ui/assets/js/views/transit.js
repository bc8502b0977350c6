// Transit: keys (create, rotate, configure) and an encrypt/decrypt/rewrap tool.
import { get, post, list } from '../api.js';
import { can } from '../acl.js';
import { h, setChildren, formCard, link, section, table, toast, fmtTime, secretValue } from '../dom.js';
import { go } from '../app.js';

const b64 = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const unb64 = (s) => new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

export async function keysView(main, [mount]) {
  const keys = await list(`${mount}keys`).catch(() => []);
  setChildren(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('Secrets', '#/secrets')), h('li', {}, h('span', { 'aria-current': 'page' }, mount)))),
    h('h1', {}, `Transit keys in ${mount}`),
    h('ul', { class: 'tree', 'aria-label': 'Keys' }, keys.length
      ? keys.map((k) => h('li', { class: 'leaf' }, link(k, `#/transit/${encodeURIComponent(mount)}/key/${encodeURIComponent(k)}`)))
      : h('li', { class: 'muted' }, 'No keys yet.')),
    can(`${mount}keys/x`, 'create', 'update') ? formCard('Create a key', [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', value: 'aes256-gcm96', options: ['aes256-gcm96', 'aes128-gcm96', 'chacha20-poly1305', 'ed25519', 'ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'hmac'] },
      { name: 'exportable', label: 'Exportable', type: 'checkbox' },
      { name: 'derived', label: 'Key derivation (needs a context on every use)', type: 'checkbox' },
    ], 'Create key', async (v) => {
      await post(`${mount}keys/${encodeURIComponent(v.name)}`, { type: v.type, exportable: v.exportable, derived: v.derived });
      toast(`Created key ${v.name}`);
      go(`#/transit/${encodeURIComponent(mount)}/key/${encodeURIComponent(v.name)}`);
    }) : null);
}

export async function keyView(main, [mount, name]) {
  const base = `${mount}keys/${encodeURIComponent(name)}`;
  const k = (await get(base)).data;
  const versions = Object.entries(k.keys || {}).map(([v, t]) => [v, typeof t === 'number' ? fmtTime(t * 1000) : fmtTime(t.creation_time || t)]);
  const encryptable = k.supports_encryption !== false;
  setChildren(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {},
      h('li', {}, link('Secrets', '#/secrets')), h('li', {}, link(mount, `#/transit/${encodeURIComponent(mount)}`)),
      h('li', {}, h('span', { 'aria-current': 'page' }, name)))),
    h('h1', {}, `Key ${name}`),
    section('Key', table('!Key properties', ['Property', 'Value'], [
      ['Type', k.type], ['Latest version', String(k.latest_version)], ['Minimum decryption version', String(k.min_decryption_version)],
      ['Minimum encryption version', String(k.min_encryption_version)], ['Exportable', String(k.exportable)],
      ['Deletion allowed', String(k.deletion_allowed)], ['Derived', String(k.derived)],
      ['Auto-rotate period', String(k.auto_rotate_period || 0)]]),
    table('Versions', ['Version', 'Created'], versions)),
    h('div', { class: 'grid' },
      can(`${base}/rotate`, 'update') ? formCard('Rotate', [], 'Rotate key', async () => {
        await post(`${base}/rotate`, {});
        toast('Rotated');
        go(location.hash);
      }, { intro: 'A new key version encrypts from now on; older versions still decrypt.' }) : null,
      can(`${base}/config`, 'update') ? formCard('Configuration', [
        { name: 'min_decryption_version', label: 'Minimum decryption version', type: 'number', value: String(k.min_decryption_version), min: 0 },
        { name: 'min_encryption_version', label: 'Minimum encryption version (0: latest)', type: 'number', value: String(k.min_encryption_version), min: 0 },
        { name: 'auto_rotate_period', label: 'Auto-rotate period (e.g. 720h, 0: off)', value: String(k.auto_rotate_period || 0) },
        { name: 'deletion_allowed', label: 'Deletion allowed', type: 'checkbox', value: k.deletion_allowed },
        { name: 'exportable', label: 'Exportable (cannot be undone)', type: 'checkbox', value: k.exportable },
      ], 'Save configuration', async (v) => {
        await post(`${base}/config`, {
          min_decryption_version: Number(v.min_decryption_version), min_encryption_version: Number(v.min_encryption_version),
          auto_rotate_period: v.auto_rotate_period, deletion_allowed: v.deletion_allowed, exportable: v.exportable || undefined,
        });
        toast('Saved');
        go(location.hash);
      }) : null),
    encryptable ? h('div', { class: 'grid' },
      can(`${mount}encrypt/${name}`, 'update') && formCard('Encrypt', [
        { name: 'plaintext', label: 'Plaintext', type: 'textarea', rows: 3 },
        ...(k.derived ? [{ name: 'context', label: 'Context (base64)' }] : []),
      ], 'Encrypt', async (v) => {
        const r = await post(`${mount}encrypt/${encodeURIComponent(name)}`, { plaintext: b64(v.plaintext), context: v.context || undefined });
        return h('p', {}, 'Ciphertext: ', h('code', { class: 'ciphertext' }, r.data.ciphertext));
      }),
      can(`${mount}decrypt/${name}`, 'update') && formCard('Decrypt', [
        { name: 'ciphertext', label: 'Ciphertext', type: 'textarea', rows: 3, mono: true },
        ...(k.derived ? [{ name: 'context', label: 'Context (base64)' }] : []),
      ], 'Decrypt', async (v) => {
        const r = await post(`${mount}decrypt/${encodeURIComponent(name)}`, { ciphertext: v.ciphertext.trim(), context: v.context || undefined });
        return h('p', {}, 'Plaintext: ', secretValue(unb64(r.data.plaintext), 'plaintext'));
      }),
      can(`${mount}rewrap/${name}`, 'update') && formCard('Rewrap', [
        { name: 'ciphertext', label: 'Ciphertext to rewrap', type: 'textarea', rows: 3, mono: true },
        ...(k.derived ? [{ name: 'context', label: 'Context (base64)' }] : []),
      ], 'Rewrap', async (v) => {
        const r = await post(`${mount}rewrap/${encodeURIComponent(name)}`, { ciphertext: v.ciphertext.trim(), context: v.context || undefined });
        return h('p', {}, 'New ciphertext: ', h('code', { class: 'ciphertext' }, r.data.ciphertext));
      })) : null);
}
