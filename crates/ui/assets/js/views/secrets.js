// Secrets: the list of engines, KV v1/v2 (and cubbyhole) as a tree, secrets with versions,
// diff, metadata, delete/undelete/destroy.
import { get, post, del, list, api } from '../api.js';
import { can, capabilitiesSelf, has } from '../acl.js';
import {
  h, setChildren, table, formCard, button, link, errorBox, secretValue, section, encPath, fmtTime,
  toast, confirmed, copyText, jsonBlock, uid,
} from '../dom.js';
import { go } from '../app.js';

/** The mount table entry of `mount` ("secret/"), as the token may see it. */
async function mountInfo(mount) {
  const r = await get('sys/internal/ui/mounts');
  const all = (r.data && r.data.secret) || {};
  if (all[mount]) return all[mount];
  if (mount === 'cubbyhole/') return { type: 'cubbyhole', options: null };
  return { type: 'kv', options: { version: '1' } };
}

const isV2 = (m) => m.type === 'kv' && m.options && String(m.options.version) === '2';

export function kvHref(mount, path, query) {
  return `#/kv/${encodeURIComponent(mount)}/${encPath(path)}${query ? `?${query}` : ''}`;
}

export async function mountsView(main) {
  const r = await get('sys/internal/ui/mounts');
  const mounts = Object.entries((r.data && r.data.secret) || {});
  if (!mounts.some(([p]) => p === 'cubbyhole/') && can('cubbyhole/x', 'read', 'list')) {
    mounts.push(['cubbyhole/', { type: 'cubbyhole', description: 'per-token private secret storage' }]);
  }
  const rows = mounts.filter(([p]) => p !== 'sys/' && p !== 'identity/').map(([p, m]) => {
    let target = null;
    if (m.type === 'kv' || m.type === 'cubbyhole') target = kvHref(p, '');
    else if (m.type === 'transit') target = `#/transit/${encodeURIComponent(p)}`;
    else if (m.type === 'database') target = `#/database/${encodeURIComponent(p)}`;
    const version = m.type === 'kv' ? ` v${(m.options && m.options.version) || '1'}` : '';
    return [target ? link(p, target) : p, m.type + version, m.description || '',
      can(`sys/mounts/${p.replace(/\/$/, '')}`, 'delete') && p !== 'cubbyhole/'
        ? button('Disable', async () => {
          if (!confirmed(`Disable ${p}? Every secret stored in it is deleted.`)) return;
          try {
            await del(`sys/mounts/${encPath(p.replace(/\/$/, ''))}`);
            toast(`Disabled ${p}`);
            go('#/secrets');
          } catch (err) {
            main.prepend(errorBox(err));
          }
        }, 'small danger', { 'aria-label': `Disable ${p}` }) : ''];
  });
  setChildren(main, h('h1', {}, 'Secrets engines'),
    table('!Secrets engines', ['Path', 'Type', 'Description', 'Actions'], rows, 'This token may not see any secrets engine.'),
    can('sys/mounts/example', 'create', 'update') ? formCard('Enable a secrets engine', [
      { name: 'path', label: 'Path', required: true, placeholder: 'kv' },
      { name: 'type', label: 'Type', type: 'select', value: 'kv2', options: [['kv2', 'KV version 2'], ['kv1', 'KV version 1'], ['transit', 'Transit'], ['totp', 'TOTP'], ['database', 'Database']] },
      { name: 'description', label: 'Description' },
    ], 'Enable engine', async (v) => {
      const path = v.path.replace(/^\/+|\/+$/g, '');
      const body = { type: v.type.startsWith('kv') ? 'kv' : v.type, description: v.description };
      if (v.type === 'kv2') body.options = { version: '2' };
      if (v.type === 'kv1') body.options = { version: '1' };
      await post(`sys/mounts/${encPath(path)}`, body);
      toast(`Enabled ${path}/`);
      go('#/secrets');
    }) : null);
}

function crumbs(mount, path) {
  const parts = path.split('/').filter(Boolean);
  const items = [h('li', {}, link('Secrets', '#/secrets')), h('li', {}, link(mount, kvHref(mount, '')))];
  let acc = '';
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    acc += p + (last && !path.endsWith('/') ? '' : '/');
    items.push(h('li', {}, last ? h('span', { 'aria-current': 'page' }, p) : link(p, kvHref(mount, acc))));
  });
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, items));
}

export async function kvView(main, [mount, path], query) {
  if (path === '' || path.endsWith('/')) return folderView(main, mount, path);
  return secretView(main, mount, path, query);
}

async function folderView(main, mount, prefix) {
  const m = await mountInfo(mount);
  const v2 = isV2(m);
  const listPath = v2 ? `${mount}metadata/${encPath(prefix)}` : `${mount}${encPath(prefix)}`;
  let keys = [];
  let listErr = null;
  try {
    keys = await list(listPath);
  } catch (err) {
    listErr = err;
  }
  const mayCreate = can(v2 ? `${mount}data/${prefix}x` : `${mount}${prefix}x`, 'create', 'update');
  setChildren(main, crumbs(mount, prefix),
    h('h1', {}, prefix ? `${mount}${prefix}` : mount),
    h('p', { class: 'muted' }, v2 ? 'KV version 2' : (m.type === 'cubbyhole' ? 'Cubbyhole: private to this token' : 'KV version 1')),
    mayCreate ? h('p', {}, link('Create secret', `#/kv-new/${encodeURIComponent(mount)}/${encPath(prefix)}`, { class: 'button primary' })) : null,
    listErr ? errorBox(listErr) : h('ul', { class: 'tree', 'aria-label': 'Secrets' },
      keys.length ? keys.map((k) => treeItem(mount, v2, prefix, k)) : h('li', { class: 'muted' }, 'No secrets here yet.')));
}

/** One entry of the tree; a folder can be expanded in place (its children listed on demand). */
function treeItem(mount, v2, prefix, k) {
  const full = prefix + k;
  const a = link(k, kvHref(mount, full));
  if (!k.endsWith('/')) return h('li', { class: 'leaf' }, a);
  const children = h('ul', { class: 'subtree', hidden: true });
  const toggle = button('+', async () => {
    const open = toggle.getAttribute('aria-expanded') === 'true';
    if (open) {
      children.hidden = true;
      toggle.setAttribute('aria-expanded', 'false');
      toggle.textContent = '+';
      return;
    }
    try {
      const sub = await list(v2 ? `${mount}metadata/${encPath(full)}` : `${mount}${encPath(full)}`);
      setChildren(children, sub.length ? sub.map((c) => treeItem(mount, v2, full, c)) : h('li', { class: 'muted' }, 'Empty.'));
    } catch (err) {
      setChildren(children, h('li', {}, errorBox(err)));
    }
    children.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    toggle.textContent = '−';
  }, 'small tree-toggle', { 'aria-expanded': 'false', 'aria-label': `Expand ${k}` });
  return h('li', { class: 'folder' }, toggle, ' ', a, children);
}

/** Sorted, pretty JSON lines of a secret's data, for the diff. */
function lines(data) {
  const sorted = {};
  for (const k of Object.keys(data || {}).sort()) sorted[k] = data[k];
  return JSON.stringify(sorted, null, 2).split('\n');
}

/** A line diff (longest common subsequence): [[' '|'-'|'+', line]]. */
export function diffLines(a, b) {
  const n = a.length;
  const m = b.length;
  const dp = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push([' ', a[i]]); i++; j++; } else if (dp[i + 1][j] >= dp[i][j + 1]) { out.push(['-', a[i]]); i++; } else { out.push(['+', b[j]]); j++; }
  }
  while (i < n) out.push(['-', a[i++]]);
  while (j < m) out.push(['+', b[j++]]);
  return out;
}

function diffBlock(a, b) {
  const d = diffLines(lines(a), lines(b));
  return h('pre', { class: 'diff', tabindex: '0', 'aria-label': 'Differences' },
    d.map(([op, l]) => h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : 'same' },
      `${op === ' ' ? ' ' : op} ${l}\n`)));
}

function dataTable(data) {
  const entries = Object.entries(data || {});
  return table('!Secret data', ['Key', 'Value'], entries.map(([k, v]) => [h('span', { class: 'mono' }, k), secretValue(v, k)]),
    'This version holds no keys.');
}

async function secretView(main, mount, path, query) {
  const m = await mountInfo(mount);
  const v2 = isV2(m);
  const actionsMsg = h('div', { 'aria-live': 'polite' });
  const act = (label, fn, cls = 'small', attrs = {}) => button(label, async () => {
    setChildren(actionsMsg);
    try {
      await fn();
    } catch (err) {
      setChildren(actionsMsg, errorBox(err));
    }
  }, cls, attrs);
  if (!v2) {
    const r = await get(`${mount}${encPath(path)}`);
    setChildren(main, crumbs(mount, path), h('h1', {}, path),
      section('Data', dataTable(r.data)),
      h('div', { class: 'actions' },
        can(`${mount}${path}`, 'update') ? link('Edit', `#/kv-edit/${encodeURIComponent(mount)}/${encPath(path)}`, { class: 'button' }) : null,
        act('Copy as JSON', () => copyText(JSON.stringify(r.data))),
        can(`${mount}${path}`, 'delete') ? act('Delete', async () => {
          if (!confirmed(`Delete ${path}?`)) return;
          await del(`${mount}${encPath(path)}`);
          toast(`Deleted ${path}`);
          go(kvHref(mount, path.replace(/[^/]*$/, '')));
        }, 'small danger') : null),
      actionsMsg);
    return;
  }
  const want = query.get('version');
  const dataPath = `${mount}data/${encPath(path)}`;
  let secret = null;
  let readErr = null;
  try {
    secret = await get(dataPath, { query: want ? { version: want } : {} });
  } catch (err) {
    // A deleted version answers 404 with its metadata in the body; read that through metadata.
    readErr = err;
  }
  let meta = null;
  let metaErr = null;
  try {
    meta = (await get(`${mount}metadata/${encPath(path)}`)).data;
  } catch (err) {
    metaErr = err;
  }
  const current = secret && secret.data ? secret.data.metadata : null;
  const version = current ? current.version : Number(want || (meta && meta.current_version) || 0);
  const vinfo = meta && meta.versions ? meta.versions[String(version)] : current;
  const deleted = vinfo && vinfo.deletion_time;
  const destroyed = vinfo && vinfo.destroyed;
  const P = {
    data: `${mount}data/${path}`, del: `${mount}delete/${path}`, undel: `${mount}undelete/${path}`,
    destroy: `${mount}destroy/${path}`, meta: `${mount}metadata/${path}`,
  };
  const caps = await capabilitiesSelf(Object.values(P));
  const mayWrite = has(caps[P.data], 'update', 'create');
  const versionNumbers = meta && meta.versions ? Object.keys(meta.versions).map(Number).sort((a, b) => b - a) : [];

  const dataSection = section(`Version ${version}`,
    destroyed ? h('p', { class: 'warning' }, 'This version was destroyed: its data is gone for good.')
      : deleted ? h('p', { class: 'warning' }, `This version was deleted on ${fmtTime(vinfo.deletion_time)}. It can be undeleted.`)
        : secret ? dataTable(secret.data.data) : errorBox(readErr),
    h('div', { class: 'actions' },
      mayWrite ? link('Create new version', `#/kv-edit/${encodeURIComponent(mount)}/${encPath(path)}`, { class: 'button primary' }) : null,
      secret && secret.data.data ? act('Copy as JSON', () => copyText(JSON.stringify(secret.data.data))) : null,
      !deleted && !destroyed && has(caps[P.del], 'update') ? act('Delete this version', async () => {
        if (!confirmed(`Delete version ${version} of ${path}? It can be undeleted.`)) return;
        await post(`${mount}delete/${encPath(path)}`, { versions: [version] });
        toast(`Deleted version ${version}`);
        go(kvHref(mount, path, `version=${version}`));
      }, 'small danger') : null,
      deleted && !destroyed && has(caps[P.undel], 'update') ? act('Undelete', async () => {
        await post(`${mount}undelete/${encPath(path)}`, { versions: [version] });
        toast(`Undeleted version ${version}`);
        go(kvHref(mount, path, `version=${version}`));
      }) : null,
      !destroyed && has(caps[P.destroy], 'update') ? act('Destroy this version', async () => {
        if (!confirmed(`Destroy version ${version} of ${path}? This cannot be undone.`)) return;
        await post(`${mount}destroy/${encPath(path)}`, { versions: [version] });
        toast(`Destroyed version ${version}`);
        go(kvHref(mount, path, `version=${version}`));
      }, 'small danger') : null,
      has(caps[P.meta], 'delete') ? act('Delete all versions', async () => {
        if (!confirmed(`Delete ${path} with every version and its metadata? This cannot be undone.`)) return;
        await del(`${mount}metadata/${encPath(path)}`);
        toast(`Deleted ${path}`);
        go(kvHref(mount, path.replace(/[^/]*$/, '')));
      }, 'small danger') : null),
    actionsMsg);

  const versionsSection = meta ? section('Versions',
    table('!Versions', ['Version', 'Created', 'State', 'Open'], versionNumbers.map((n) => {
      const vi = meta.versions[String(n)];
      const st = vi.destroyed ? 'destroyed' : vi.deletion_time ? 'deleted' : (n === meta.current_version ? 'current' : 'kept');
      return [String(n), fmtTime(vi.created_time), st,
        n === version ? h('span', { class: 'muted' }, 'shown') : link(`View version ${n}`, kvHref(mount, path, `version=${n}`))];
    })),
    versionNumbers.length > 1 ? diffForm(mount, path, versionNumbers) : null) : (metaErr ? section('Versions', errorBox(metaErr)) : null);

  const metaSection = meta && has(caps[P.meta], 'update') ? metadataForm(mount, path, meta)
    : meta ? section('Metadata', table('!Custom metadata', ['Key', 'Value'],
      Object.entries(meta.custom_metadata || {}).map(([k, v]) => [k, String(v)]), 'No custom metadata.')) : null;

  setChildren(main, crumbs(mount, path), h('h1', {}, path), dataSection, versionsSection, metaSection);
}

function diffForm(mount, path, versions) {
  const out = h('div', { 'aria-live': 'polite' });
  const opts = versions.map((n) => [String(n), `Version ${n}`]);
  return formCard('Compare versions', [
    { name: 'from', label: 'From', type: 'select', options: opts, value: String(versions[1]) },
    { name: 'to', label: 'To', type: 'select', options: opts, value: String(versions[0]) },
    out,
  ], 'Show diff', async (v) => {
    const read = async (n) => {
      const r = await get(`${mount}data/${encPath(path)}`, { query: { version: n } });
      return r.data.data || {};
    };
    const [a, b] = await Promise.all([read(v.from), read(v.to)]);
    setChildren(out, h('h3', {}, `Version ${v.from} → version ${v.to}`), diffBlock(a, b));
  });
}

function kvRows(container, entries, keyLabel, valueLabel, masked) {
  const addRow = (k = '', val = '') => {
    const id = uid('row');
    const keyIn = h('input', { id: `${id}-k`, class: 'row-key', value: k, autocomplete: 'off', spellcheck: 'false' });
    const isJson = typeof val !== 'string';
    const valIn = h('input', { id: `${id}-v`, class: 'row-value', type: masked ? 'password' : 'text', value: isJson ? JSON.stringify(val) : val, autocomplete: 'off', spellcheck: 'false' });
    // A value that was not a string (number, list, object) is edited as JSON and saved as such.
    const row = h('div', { class: 'kvrow', dataset: { key: k, json: isJson ? '1' : '' } },
      h('div', { class: 'field' }, h('label', { for: keyIn.id }, keyLabel), keyIn),
      h('div', { class: 'field' }, h('label', { for: valIn.id }, valueLabel), valIn),
      button('Remove', () => row.remove(), 'small', { 'aria-label': 'Remove this row' }));
    container.appendChild(row);
    return row;
  };
  if (entries.length) entries.forEach(([k, v]) => addRow(k, v));
  else addRow();
  return addRow;
}

function readRows(container) {
  const out = {};
  for (const row of container.querySelectorAll('.kvrow')) {
    const k = row.querySelector('.row-key').value.trim();
    const v = row.querySelector('.row-value').value;
    if (!k) continue;
    if (row.dataset.json === '1') {
      try {
        out[k] = JSON.parse(v);
      } catch {
        throw new Error(`The value of ${k} was JSON and is no longer valid JSON.`);
      }
    } else {
      out[k] = v;
    }
  }
  return out;
}

function metadataForm(mount, path, meta) {
  const rows = h('div', { class: 'rows' });
  const add = kvRows(rows, Object.entries(meta.custom_metadata || {}), 'Metadata key', 'Metadata value', false);
  return formCard('Metadata', [
    { name: 'max_versions', label: 'Maximum versions kept (0: the mount default)', type: 'number', value: String(meta.max_versions || 0), min: 0 },
    { name: 'cas_required', label: 'Require check-and-set on writes', type: 'checkbox', value: meta.cas_required },
    { name: 'delete_version_after', label: 'Delete versions after (e.g. 720h, 0s: never)', value: meta.delete_version_after || '0s' },
    h('fieldset', {}, h('legend', {}, 'Custom metadata'), rows, button('Add metadata entry', () => add(), 'small')),
  ], 'Save metadata', async (v) => {
    await post(`${mount}metadata/${encPath(path)}`, {
      max_versions: Number(v.max_versions || 0), cas_required: v.cas_required,
      delete_version_after: v.delete_version_after || '0s', custom_metadata: readRows(rows),
    });
    toast('Metadata saved');
    return h('p', {}, 'Metadata saved.');
  });
}

async function editor(main, mount, path, isNew) {
  const m = await mountInfo(mount);
  const v2 = isV2(m);
  let existing = {};
  let version = 0;
  if (!isNew) {
    const r = await get(v2 ? `${mount}data/${encPath(path)}` : `${mount}${encPath(path)}`);
    existing = v2 ? (r.data.data || {}) : r.data;
    version = v2 ? r.data.metadata.version : 0;
  }
  const rows = h('div', { class: 'rows' });
  const add = kvRows(rows, Object.entries(existing), 'Key', 'Value', true);
  const show = h('input', { type: 'checkbox', id: 'show-values', onchange: () => {
    for (const el of rows.querySelectorAll('.row-value')) el.type = show.checked ? 'text' : 'password';
  } });
  const jsonArea = h('textarea', { id: 'secret-json', class: 'mono', rows: 10, spellcheck: 'false' });
  const jsonField = h('div', { class: 'field', hidden: true }, h('label', { for: 'secret-json' }, 'Data as a JSON object'), jsonArea);
  const rowsBox = h('div', {}, rows, h('div', { class: 'actions' }, button('Add key', () => add(), 'small'),
    h('span', { class: 'check' }, show, h('label', { for: 'show-values' }, 'Show values'))));
  const jsonMode = h('input', { type: 'checkbox', id: 'json-mode', onchange: () => {
    try {
      if (jsonMode.checked) jsonArea.value = JSON.stringify(readRows(rows), null, 2);
      else {
        const obj = JSON.parse(jsonArea.value || '{}');
        rows.replaceChildren();
        kvRows(rows, Object.entries(obj), 'Key', 'Value', !show.checked);
      }
    } catch (err) {
      jsonMode.checked = !jsonMode.checked;
      toast(`Cannot switch: ${err.message}`);
      return;
    }
    jsonField.hidden = !jsonMode.checked;
    rowsBox.hidden = jsonMode.checked;
  } });
  const fields = [];
  if (isNew) fields.push({ name: 'path', label: 'Path of the secret', value: path, required: true, placeholder: 'app/config' });
  fields.push(h('fieldset', {}, h('legend', {}, 'Data'),
    h('div', { class: 'field check' }, jsonMode, h('label', { for: 'json-mode' }, 'Edit as JSON')),
    rowsBox, jsonField));
  setChildren(main, crumbs(mount, isNew ? path : path),
    h('h1', {}, isNew ? 'Create secret' : `Edit ${path}`),
    formCard('', fields, isNew ? 'Save secret' : 'Save new version', async (v) => {
      const target = isNew ? v.path.replace(/^\/+/, '') : path;
      if (!target || target.endsWith('/')) throw new Error('Enter a path that names a secret, not a folder.');
      let data;
      if (jsonMode.checked) {
        try {
          data = JSON.parse(jsonArea.value);
        } catch (e) {
          throw new Error(`The data is not valid JSON: ${e.message}`);
        }
        if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('The data must be a JSON object.');
      } else {
        data = readRows(rows);
      }
      if (v2) {
        await post(`${mount}data/${encPath(target)}`, { data, options: { cas: isNew ? 0 : version } });
      } else {
        await api('PUT', `${mount}${encPath(target)}`, data);
      }
      toast(`Saved ${target}`);
      go(kvHref(mount, target));
    }));
}

export async function kvNewView(main, [mount, prefix]) {
  return editor(main, mount, prefix, true);
}

export async function kvEditView(main, [mount, path]) {
  return editor(main, mount, path, false);
}
