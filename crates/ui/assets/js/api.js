// The Vault HTTP API, from the browser. The token lives in sessionStorage only.

const TOKEN_KEY = 'coffer.token';

export class ApiError extends Error {
  constructor(status, messages) {
    super(messages.length ? messages.join('; ') : `HTTP ${status}`);
    this.status = status;
    this.messages = messages.length ? messages : [`The server answered ${status} with no message.`];
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * api('GET', 'sys/mounts') → the parsed JSON body (null for 204).
 * opts: {list: true} for LIST, {query: {...}}, {headers: {...}}, {noToken: true}, {raw: true}.
 */
export async function api(method, path, body, opts = {}) {
  const params = new URLSearchParams(opts.query || {});
  if (opts.list) params.set('list', 'true');
  const qs = params.toString();
  const url = `/v1/${path}${qs ? `?${qs}` : ''}`;
  const headers = { ...(opts.headers || {}) };
  const token = opts.token || getToken();
  if (token && !opts.noToken) headers['X-Vault-Token'] = token;
  const init = { method: opts.list ? 'GET' : method, headers, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, [`Cannot reach the server: ${e.message}`]);
  }
  if (opts.raw) return res;
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    // A LIST of nothing answers 404 with no errors: an empty list.
    if (res.status === 404 && opts.list && json && Array.isArray(json.errors) && json.errors.length === 0) {
      return { data: { keys: [] } };
    }
    const msgs = json && Array.isArray(json.errors) ? json.errors.map(String) : (text ? [text.slice(0, 500)] : []);
    throw new ApiError(res.status, msgs);
  }
  return json;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body || {}, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);
export async function list(path, opts = {}) {
  const r = await api('GET', path, undefined, { ...opts, list: true });
  return (r && r.data && r.data.keys) || [];
}
