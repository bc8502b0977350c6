// Identity: entities and groups — their aliases, group membership (direct and inherited) and the
// policies a token of the entity ends up with (its own, plus those of every group it is in).
import { get, post, del, api } from '../api.js';
import { can } from '../acl.js';
import {
  h, setChildren, table, formCard, button, link, errorBox, section, toast, confirmed, fmtTime,
} from '../dom.js';
import { go } from '../app.js';

const enc = encodeURIComponent;
const csv = (s) => (s || '').split(',').map((x) => x.trim()).filter(Boolean);
const joined = (l) => (l && l.length ? l.join(', ') : '—');

/** LIST of an id collection with its key_info: [[id, info], …]. */
async function listed(path) {
  try {
    const r = await api('GET', path, undefined, { list: true });
    const d = (r && r.data) || {};
    return (d.keys || []).map((id) => [id, (d.key_info || {})[id] || {}]);
  } catch (err) {
    if (err.status === 404) return [];
    throw err;
  }
}

/** id → name of every auth mount, from sys/auth (for alias rows and the alias form). */
async function authMounts() {
  try {
    const r = await get('sys/auth');
    return Object.entries(r.data || r).filter(([, m]) => m && typeof m === 'object' && m.accessor)
      .map(([path, m]) => ({ path, accessor: m.accessor, type: m.type }));
  } catch {
    return [];
  }
}

/** Groups by id, each read once; unreadable ones are left out. */
async function readGroups(ids) {
  const out = new Map();
  await Promise.all([...new Set(ids)].map(async (id) => {
    try {
      out.set(id, (await get(`identity/group/id/${enc(id)}`)).data);
    } catch { /* not readable with this token */ }
  }));
  return out;
}

function groupLink(id, groups) {
  const g = groups.get(id);
  return link(g ? g.name : id, `#/identity/group/${enc(id)}`);
}

function metaRows(m) {
  return Object.entries(m || {}).map(([k, v]) => [k, String(v)]);
}

export async function listView(main) {
  const [entities, groups] = await Promise.all([listed('identity/entity/id'), listed('identity/group/id')]);
  const msg = h('div', { 'aria-live': 'polite' });
  const forms = [];
  if (can('identity/entity', 'update', 'create')) {
    forms.push(formCard('Create an entity', [
      { name: 'name', label: 'Name', required: true },
      { name: 'policies', label: 'Policies (comma separated)' },
    ], 'Create entity', async (v) => {
      const r = await post('identity/entity', { name: v.name.trim(), policies: csv(v.policies) });
      toast(`Created entity ${v.name.trim()}`);
      go(`#/identity/entity/${enc(r.data.id)}`);
    }));
  }
  if (can('identity/group', 'update', 'create')) {
    forms.push(formCard('Create a group', [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', options: [['internal', 'internal (members listed here)'], ['external', 'external (members from an auth method\'s groups)']] },
      { name: 'policies', label: 'Policies (comma separated)' },
    ], 'Create group', async (v) => {
      const r = await post('identity/group', { name: v.name.trim(), type: v.type, policies: csv(v.policies) });
      toast(`Created group ${v.name.trim()}`);
      go(`#/identity/group/${enc(r.data.id)}`);
    }));
  }
  setChildren(main, h('h1', {}, 'Identity'), msg,
    section('Entities', table('!Entities', ['Name', 'ID', 'Aliases'], entities.map(([id, i]) => [
      link(i.name || id, `#/identity/entity/${enc(id)}`), h('code', {}, id),
      joined((i.aliases || []).map((a) => `${a.name} (${a.mount_path || a.mount_accessor})`))]), 'No entities yet.')),
    section('Groups', table('!Groups', ['Name', 'ID', 'Type'], groups.map(([id, i]) => [
      link(i.name || id, `#/identity/group/${enc(id)}`), h('code', {}, id), i.type || '']), 'No groups yet.')),
    forms.length ? h('div', { class: 'grid wide' }, forms) : null);
}

export async function entityView(main, [id]) {
  const e = (await get(`identity/entity/id/${enc(id)}`)).data;
  const [groups, mounts] = await Promise.all([readGroups(e.group_ids || []), authMounts()]);
  const msg = h('div', { 'aria-live': 'polite' });
  const guard = (fn) => async () => {
    try {
      await fn();
    } catch (err) {
      setChildren(msg, errorBox(err));
    }
  };
  // What a token of this entity holds besides its own policies: the entity's and every group's.
  const effective = new Map();
  for (const p of e.policies || []) effective.set(p, 'the entity');
  for (const gid of e.group_ids || []) {
    const g = groups.get(gid);
    for (const p of (g && g.policies) || []) if (!effective.has(p)) effective.set(p, `group ${g.name}`);
  }
  const direct = new Set(e.direct_group_ids || []);
  const parts = [
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('Identity', '#/identity')), h('li', {}, h('span', { 'aria-current': 'page' }, e.name)))),
    h('h1', {}, `Entity ${e.name}`), msg,
    table('!Entity', ['Property', 'Value'], [
      ['ID', h('code', {}, e.id)], ['Disabled', e.disabled ? 'yes (its tokens are refused)' : 'no'],
      ['Policies', joined(e.policies)], ['Created', fmtTime(e.creation_time)],
      ['Merged from', joined(e.merged_entity_ids)]]),
    section('Metadata', table('!Metadata', ['Key', 'Value'], metaRows(e.metadata), 'No metadata.')),
    section('Aliases', table('!Aliases', ['Name', 'Auth mount', 'ID', 'Actions'], (e.aliases || []).map((a) => [
      a.name, `${a.mount_path || ''} (${a.mount_type || ''}, ${a.mount_accessor})`, h('code', {}, a.id),
      can(`identity/entity-alias/id/${a.id}`, 'delete') ? button('Delete', guard(async () => {
        if (!confirmed(`Delete alias ${a.name}?`)) return;
        await del(`identity/entity-alias/id/${enc(a.id)}`);
        go(location.hash);
      }), 'small danger', { 'aria-label': `Delete alias ${a.name}` }) : '']), 'No aliases: no login maps to this entity yet.')),
    section('Groups', table('!Group membership', ['Group', 'Membership', 'Policies'], (e.group_ids || []).map((gid) => [
      groupLink(gid, groups), direct.has(gid) ? 'direct' : 'inherited (through a member group)',
      joined((groups.get(gid) || {}).policies)]), 'Not in any group.')),
    section('Resulting policies', h('p', {}, 'Besides the policies of the token itself, a token of this entity holds these:'),
      table('!Resulting policies', ['Policy', 'From'], [...effective].map(([p, from]) => [link(p, `#/policies/view/${enc(p)}`), from]), 'None.')),
  ];
  const forms = [];
  if (can('identity/entity-alias', 'update', 'create') && mounts.length) {
    forms.push(formCard('Add an alias', [
      { name: 'name', label: 'Name on the auth mount (username, role id, …)', required: true },
      { name: 'mount_accessor', label: 'Auth mount', type: 'select', options: mounts.map((m) => [m.accessor, `${m.path} (${m.type})`]) },
    ], 'Add alias', async (v) => {
      await post('identity/entity-alias', { name: v.name.trim(), mount_accessor: v.mount_accessor, canonical_id: e.id });
      toast(`Added alias ${v.name.trim()}`);
      go(location.hash);
    }));
  }
  if (can(`identity/entity/id/${e.id}`, 'update')) {
    forms.push(formCard('Update', [
      { name: 'policies', label: 'Policies (comma separated)', value: (e.policies || []).join(', ') },
      { name: 'disabled', label: 'Disabled', type: 'checkbox', value: e.disabled },
    ], 'Save', async (v) => {
      await post(`identity/entity/id/${enc(e.id)}`, { policies: csv(v.policies), disabled: v.disabled });
      toast('Saved');
      go(location.hash);
    }));
  }
  if (can(`identity/entity/id/${e.id}`, 'delete')) {
    parts.push(h('p', {}, button('Delete entity', guard(async () => {
      if (!confirmed(`Delete entity ${e.name}? Its aliases go with it.`)) return;
      await del(`identity/entity/id/${enc(e.id)}`);
      toast(`Deleted entity ${e.name}`);
      go('#/identity');
    }), 'danger')));
  }
  setChildren(main, parts, forms.length ? h('div', { class: 'grid wide' }, forms) : null);
}

export async function groupView(main, [id]) {
  const g = (await get(`identity/group/id/${enc(id)}`)).data;
  const external = g.type === 'external';
  // Parents, transitively: their policies reach every member of this group.
  const groups = new Map([[g.id, g]]);
  const ancestors = [];
  let frontier = g.parent_group_ids || [];
  while (frontier.length) {
    const next = await readGroups(frontier.filter((x) => !groups.has(x)));
    frontier = [];
    for (const [gid, x] of next) {
      groups.set(gid, x);
      ancestors.push(gid);
      frontier.push(...(x.parent_group_ids || []));
    }
  }
  for (const [gid, x] of await readGroups((g.member_group_ids || []).filter((x) => !groups.has(x)))) groups.set(gid, x);
  const effective = new Map();
  for (const p of g.policies || []) effective.set(p, 'this group');
  for (const gid of ancestors) for (const p of groups.get(gid).policies || []) if (!effective.has(p)) effective.set(p, `parent group ${groups.get(gid).name}`);
  const members = await Promise.all((g.member_entity_ids || []).map(async (eid) => {
    try {
      return [eid, (await get(`identity/entity/id/${enc(eid)}`)).data.name];
    } catch {
      return [eid, eid];
    }
  }));
  const mounts = external ? await authMounts() : [];
  const msg = h('div', { 'aria-live': 'polite' });
  const alias = g.alias && g.alias.id ? g.alias : null;
  const parts = [
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('Identity', '#/identity')), h('li', {}, h('span', { 'aria-current': 'page' }, g.name)))),
    h('h1', {}, `Group ${g.name}`), msg,
    table('!Group', ['Property', 'Value'], [
      ['ID', h('code', {}, g.id)], ['Type', external ? 'external (members come from logins through its alias)' : 'internal'],
      ['Policies', joined(g.policies)], ['Created', fmtTime(g.creation_time)]]),
    section('Metadata', table('!Metadata', ['Key', 'Value'], metaRows(g.metadata), 'No metadata.')),
    external ? section('Alias', alias
      ? table('!Group alias', ['Name', 'Auth mount', 'ID'], [[alias.name, `${alias.mount_path || ''} (${alias.mount_accessor})`, h('code', {}, alias.id)]])
      : h('p', {}, 'No alias: no login adds members to this group yet.')) : null,
    section('Member entities', table('!Member entities', ['Entity', 'ID'], members.map(([eid, name]) => [link(name, `#/identity/entity/${enc(eid)}`), h('code', {}, eid)]), 'No member entities.')),
    section('Member groups', table('!Member groups', ['Group'], (g.member_group_ids || []).map((gid) => [groupLink(gid, groups)]), 'No member groups.')),
    section('Parent groups', table('!Parent groups', ['Group'], (g.parent_group_ids || []).map((gid) => [groupLink(gid, groups)]), 'Not a member of another group.')),
    section('Resulting policies', h('p', {}, 'Every member entity (and every member group\'s members) gets these:'),
      table('!Resulting policies', ['Policy', 'From'], [...effective].map(([p, from]) => [link(p, `#/policies/view/${enc(p)}`), from]), 'None.')),
  ];
  const forms = [];
  if (can(`identity/group/id/${g.id}`, 'update')) {
    const fields = [{ name: 'policies', label: 'Policies (comma separated)', value: (g.policies || []).join(', ') }];
    if (!external) {
      fields.push({ name: 'member_entity_ids', label: 'Member entity IDs (comma separated)', value: (g.member_entity_ids || []).join(', ') });
      fields.push({ name: 'member_group_ids', label: 'Member group IDs (comma separated)', value: (g.member_group_ids || []).join(', ') });
    }
    forms.push(formCard('Update', fields, 'Save', async (v) => {
      const body = { policies: csv(v.policies) };
      if (!external) {
        body.member_entity_ids = csv(v.member_entity_ids);
        body.member_group_ids = csv(v.member_group_ids);
      }
      await post(`identity/group/id/${enc(g.id)}`, body);
      toast('Saved');
      go(location.hash);
    }));
  }
  if (external && !alias && can('identity/group-alias', 'update', 'create') && mounts.length) {
    forms.push(formCard('Bind to an auth method\'s group', [
      { name: 'name', label: 'Group name on the auth mount', required: true },
      { name: 'mount_accessor', label: 'Auth mount', type: 'select', options: mounts.map((m) => [m.accessor, `${m.path} (${m.type})`]) },
    ], 'Create alias', async (v) => {
      await post('identity/group-alias', { name: v.name.trim(), mount_accessor: v.mount_accessor, canonical_id: g.id });
      toast('Alias created');
      go(location.hash);
    }));
  }
  if (can(`identity/group/id/${g.id}`, 'delete')) {
    parts.push(h('p', {}, button('Delete group', async () => {
      if (!confirmed(`Delete group ${g.name}? Its members lose its policies.`)) return;
      try {
        await del(`identity/group/id/${enc(g.id)}`);
        toast(`Deleted group ${g.name}`);
        go('#/identity');
      } catch (err) {
        setChildren(msg, errorBox(err));
      }
    }, 'danger')));
  }
  setChildren(main, parts, forms.length ? h('div', { class: 'grid wide' }, forms) : null);
}
