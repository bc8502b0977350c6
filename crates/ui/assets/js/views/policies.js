// ACL policies: list, view, create and edit HCL (the server's parse errors shown inline), delete.
import { get, list, api, del } from '../api.js';
import { can } from '../acl.js';
import { h, setChildren, link, button, errorBox, confirmed, toast, uid } from '../dom.js';
import { go } from '../app.js';

const enc = encodeURIComponent;

export async function listView(main) {
  const names = await list('sys/policies/acl');
  setChildren(main, h('h1', {}, 'ACL policies'),
    can('sys/policies/acl/x', 'create', 'update') ? h('p', {}, link('Create policy', '#/policies/new', { class: 'button primary' })) : null,
    h('ul', { class: 'tree', 'aria-label': 'Policies' }, names.map((n) => h('li', { class: 'leaf' }, link(n, `#/policies/view/${enc(n)}`)))));
}

export async function showView(main, [name]) {
  const r = await get(`sys/policies/acl/${enc(name)}`);
  const msg = h('div', { 'aria-live': 'polite' });
  setChildren(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('Policies', '#/policies')), h('li', {}, h('span', { 'aria-current': 'page' }, name)))),
    h('h1', {}, `Policy ${name}`),
    h('pre', { class: 'hcl', tabindex: '0', 'aria-label': `Policy ${name}` }, r.data.policy || ''),
    h('div', { class: 'actions' },
      name !== 'root' && can(`sys/policies/acl/${name}`, 'update') ? link('Edit', `#/policies/edit/${enc(name)}`, { class: 'button primary' }) : null,
      name !== 'root' && name !== 'default' && can(`sys/policies/acl/${name}`, 'delete') ? button('Delete', async () => {
        if (!confirmed(`Delete policy ${name}? Tokens holding it lose what it granted.`)) return;
        try {
          await del(`sys/policies/acl/${enc(name)}`);
          toast(`Deleted policy ${name}`);
          go('#/policies');
        } catch (err) {
          setChildren(msg, errorBox(err));
        }
      }, 'danger') : null),
    msg);
}

/** Moves the caret to line n (1-based) of a textarea. */
function gotoLine(ta, n) {
  const lines = ta.value.split('\n');
  let pos = 0;
  for (let i = 0; i < n - 1 && i < lines.length; i++) pos += lines[i].length + 1;
  ta.focus();
  ta.setSelectionRange(pos, pos + (lines[n - 1] || '').length);
}

export async function editView(main, [name]) {
  const isNew = !name;
  let text = '# Grants read access to one folder of a KV v2 mount\npath "secret/data/app/*" {\n  capabilities = ["read"]\n}\n';
  if (!isNew) text = (await get(`sys/policies/acl/${enc(name)}`)).data.policy || '';
  const errId = uid('policy-error');
  const status = h('div', { id: errId, class: 'policy-status', 'aria-live': 'polite' });
  const nameIn = h('input', { id: 'policy-name', name: 'name', value: name || '', required: true, readonly: !isNew, autocomplete: 'off' });
  const ta = h('textarea', { id: 'policy-text', name: 'policy', rows: 16, class: 'mono', spellcheck: 'false', 'aria-describedby': errId });
  ta.value = text;
  const form = h('form', { class: 'card', 'aria-label': 'Policy' },
    h('div', { class: 'field' }, h('label', { for: 'policy-name' }, 'Name'), nameIn),
    h('div', { class: 'field' }, h('label', { for: 'policy-text' }, 'Policy (HCL)'), ta),
    status,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save policy'),
      link('Cancel', isNew ? '#/policies' : `#/policies/view/${enc(name)}`, { class: 'button' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setChildren(status);
    ta.removeAttribute('aria-invalid');
    const n = nameIn.value.trim();
    try {
      if (!n) throw new Error('Give the policy a name.');
      await api('PUT', `sys/policies/acl/${enc(n)}`, { policy: ta.value });
      toast(`Saved policy ${n}`);
      go(`#/policies/view/${enc(n)}`);
    } catch (err) {
      ta.setAttribute('aria-invalid', 'true');
      const box = errorBox(err);
      const line = /line (\d+)/.exec((err.messages || [err.message]).join(' '));
      if (line) {
        box.appendChild(button(`Go to line ${line[1]}`, () => gotoLine(ta, Number(line[1])), 'small'));
      }
      setChildren(status, box);
    }
  });
  setChildren(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, link('Policies', '#/policies')), h('li', {}, h('span', { 'aria-current': 'page' }, isNew ? 'New' : name)))),
    h('h1', {}, isNew ? 'Create policy' : `Edit policy ${name}`), form);
}
