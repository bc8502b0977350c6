// DOM helpers. Every piece of data goes in as a text node or a property, never as HTML.

/** h('div', {class: 'x', onclick: fn}, 'text', child, [more]) → element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value' || k === 'checked' || k === 'selected') {
      el[k] = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled control. spec: {name, label, type, value, options, required, placeholder, help, rows} */
export function field(spec) {
  const id = uid(spec.name || 'f');
  const type = spec.type || 'text';
  let control;
  const common = { id, name: spec.name, required: spec.required, placeholder: spec.placeholder, autocomplete: spec.autocomplete || 'off' };
  if (spec.help) common['aria-describedby'] = `${id}-help`;
  if (type === 'textarea') {
    control = h('textarea', { ...common, rows: spec.rows || 6, spellcheck: 'false', class: spec.mono ? 'mono' : undefined });
    control.value = spec.value ?? '';
  } else if (type === 'select') {
    control = h('select', common, (spec.options || []).map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: String(spec.value ?? '') === String(v) }, label);
    }));
  } else if (type === 'checkbox') {
    control = h('input', { ...common, type: 'checkbox', checked: !!spec.value });
    return h('div', { class: 'field check' }, control, h('label', { for: id }, spec.label),
      spec.help ? h('p', { class: 'help', id: `${id}-help` }, spec.help) : null);
  } else {
    control = h('input', { ...common, type, value: spec.value ?? '', min: spec.min, spellcheck: 'false' });
  }
  return h('div', { class: 'field' }, h('label', { for: id }, spec.label), control,
    spec.help ? h('p', { class: 'help', id: `${id}-help` }, spec.help) : null);
}

/** The values of a form's named controls. */
export function values(form) {
  const out = {};
  for (const el of form.querySelectorAll('[name]')) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return out;
}

/** An error box: the server's messages, announced to screen readers. */
export function errorBox(err) {
  const msgs = err && err.messages && err.messages.length ? err.messages : [String(err && err.message ? err.message : err)];
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, err && err.status ? `Error ${err.status}` : 'Error'),
    msgs.length === 1 ? h('p', {}, msgs[0]) : h('ul', {}, msgs.map((m) => h('li', {}, m))));
}

/**
 * A form card: title, fields, submit button; onSubmit(values, form) may return something to
 * show (a node, or an object shown as JSON). Errors are shown inside the form.
 */
export function formCard(title, fields, submitLabel, onSubmit, opts = {}) {
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', class: opts.danger ? 'danger' : 'primary' }, submitLabel);
  const form = h('form', { class: 'card', 'aria-label': title, novalidate: opts.novalidate },
    title ? h('h2', {}, title) : null,
    opts.intro ? h('p', { class: 'muted' }, opts.intro) : null,
    fields.map((f) => (f instanceof Node ? f : field(f))),
    h('div', { class: 'actions' }, btn, opts.extraButtons || null),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setChildren(status);
    btn.disabled = true;
    try {
      const res = await onSubmit(values(form), form);
      if (res instanceof Node) setChildren(status, res);
      else if (res !== undefined && res !== null) setChildren(status, jsonBlock(res));
    } catch (err) {
      setChildren(status, errorBox(err));
    } finally {
      btn.disabled = false;
    }
  });
  return form;
}

/** A read-only JSON block, as text. */
export function jsonBlock(obj, label = 'Result') {
  return h('pre', { class: 'json', tabindex: '0', 'aria-label': label }, JSON.stringify(obj, null, 2));
}

/** A table: headers and rows of cells (strings or nodes). */
export function table(caption, headers, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', {},
    h('caption', { class: caption.startsWith('!') ? 'sr-only' : undefined }, caption.replace(/^!/, '')),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function button(label, onclick, cls = '', attrs = {}) {
  return h('button', { type: 'button', class: cls, onclick, ...attrs }, label);
}

export function link(label, href, attrs = {}) {
  return h('a', { href, ...attrs }, label);
}

/** A short message in the live region. */
export function toast(msg) {
  const t = document.getElementById('toast');
  setChildren(t, msg);
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

/** Asks before something destructive. */
export function confirmed(msg) {
  return window.confirm(msg);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied to the clipboard.');
  } catch {
    toast('The browser refused clipboard access.');
  }
}

/** A secret value: masked until revealed, with a copy button. */
export function secretValue(value, label) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const shown = h('span', { class: 'secret masked' }, '••••••••');
  let revealed = false;
  const reveal = button('Reveal', () => {
    revealed = !revealed;
    shown.textContent = revealed ? text : '••••••••';
    shown.classList.toggle('masked', !revealed);
    reveal.textContent = revealed ? 'Hide' : 'Reveal';
    reveal.setAttribute('aria-label', `${revealed ? 'Hide' : 'Reveal'} ${label}`);
  }, 'small', { 'aria-label': `Reveal ${label}` });
  const copy = button('Copy', () => copyText(text), 'small', { 'aria-label': `Copy ${label}` });
  return h('span', { class: 'secret-wrap' }, shown, reveal, copy);
}

export function section(title, ...children) {
  return h('section', { class: 'section', 'aria-label': title }, h('h2', {}, title), children);
}

/** Encodes each segment of a path for a URL, keeping the slashes. */
export function encPath(p) {
  return p.split('/').map(encodeURIComponent).join('/');
}

export function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
