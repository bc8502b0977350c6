// What the current token may do, from sys/internal/ui/resultant-acl. The server still checks
// every request; this only decides what the UI offers.
import { get, post } from './api.js';

let acl = null;

export async function loadAcl() {
  try {
    const r = await get('sys/internal/ui/resultant-acl');
    acl = (r && r.data) || { exact_paths: {}, glob_paths: {}, root: false };
  } catch {
    acl = { exact_paths: {}, glob_paths: {}, root: false };
  }
  return acl;
}

export function clearAcl() {
  acl = null;
}

export function isRoot() {
  return !!(acl && acl.root);
}

function patternRegex(pattern) {
  let p = pattern;
  const prefix = p.endsWith('*');
  if (prefix) p = p.slice(0, -1);
  const body = p.split('/').map((seg) => (seg === '+' ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
  return new RegExp(`^${body}${prefix ? '.*' : ''}$`);
}

/** The capabilities the token has on a path, as the server would compute them (approximately). */
export function capabilities(path) {
  if (!acl) return [];
  if (acl.root) return ['root'];
  const exact = acl.exact_paths && acl.exact_paths[path];
  if (exact) return exact.capabilities || [];
  let best = null;
  for (const [pattern, rule] of Object.entries(acl.glob_paths || {})) {
    const pat = pattern.includes('*') || pattern.includes('+') ? pattern : `${pattern}*`;
    if (patternRegex(pat).test(path) && (!best || pattern.length > best[0].length)) best = [pattern, rule];
  }
  return best ? best[1].capabilities || [] : [];
}

/** can('sys/policies/acl', 'list') — root may do anything, deny wins. */
export function can(path, ...caps) {
  const have = capabilities(path);
  if (have.includes('root')) return true;
  if (have.includes('deny')) return false;
  return caps.some((c) => have.includes(c));
}

/**
 * The server's own answer for a few exact paths (sys/capabilities-self): exact where the
 * resultant ACL is only approximated here (deny precedence, `+` segments, parameters).
 * Returns {path: [capabilities]}; paths it cannot check fall back to the resultant ACL.
 */
export async function capabilitiesSelf(paths) {
  const out = {};
  try {
    const r = await post('sys/capabilities-self', { paths });
    const d = (r && r.data) || r || {};
    for (const p of paths) out[p] = Array.isArray(d[p]) ? d[p] : capabilities(p);
  } catch {
    for (const p of paths) out[p] = capabilities(p);
  }
  return out;
}

/** has(caps, 'update', 'create'): true when caps holds root or any of the given ones (and no deny). */
export function has(caps, ...want) {
  if (!caps || caps.includes('deny')) return false;
  return caps.includes('root') || want.some((c) => caps.includes(c));
}
