// The dashboard: seal and HA state, version, mounts, a few live metrics.
import { get, api } from '../api.js';
import { can } from '../acl.js';
import { h, setChildren, table, errorBox, button, confirmed } from '../dom.js';
import { onLeave, go } from '../app.js';

function kv(rows) {
  return h('dl', { class: 'kv' }, rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
}

export async function view(main) {
  const [seal, leader, mounts] = await Promise.all([
    get('sys/seal-status', { noToken: true }),
    get('sys/leader').catch(() => null),
    get('sys/internal/ui/mounts').catch(() => null),
  ]);
  const metricsBox = h('div', { 'aria-live': 'off' });
  const cards = h('div', { class: 'grid' },
    h('section', { class: 'card', 'aria-label': 'Seal' }, h('h2', {}, 'Seal'),
      kv([['State', seal.sealed ? 'sealed' : 'unsealed'], ['Seal type', seal.type],
        ['Threshold', `${seal.t} of ${seal.n}`], ['Version', seal.version],
        ['Cluster', seal.cluster_name || ''], ['Storage', seal.storage_type || '']]),
      can('sys/seal', 'update', 'sudo') ? button('Seal now', async () => {
        if (!confirmed('Seal Coffer? Nobody can use it until it is unsealed again.')) return;
        await api('PUT', 'sys/seal');
        go('#/');
      }, 'danger small') : null),
    h('section', { class: 'card', 'aria-label': 'High availability' }, h('h2', {}, 'High availability'),
      leader ? kv([['HA enabled', leader.ha_enabled ? 'yes' : 'no'],
        leader.ha_enabled ? ['This node', leader.is_self ? 'active' : 'standby'] : null,
        leader.leader_address ? ['Leader', leader.leader_address] : null]) : h('p', { class: 'muted' }, 'Not available.')),
    h('section', { class: 'card', 'aria-label': 'Metrics' }, h('h2', {}, 'Metrics'), metricsBox));
  const secretMounts = mounts && mounts.data ? Object.entries(mounts.data.secret || {}) : [];
  const authMounts = mounts && mounts.data ? Object.entries(mounts.data.auth || {}) : [];
  setChildren(main, h('h1', {}, 'Dashboard'), cards,
    h('section', { class: 'section', 'aria-label': 'Mounts' }, h('h2', {}, 'Mounts'),
      table('Secrets engines', ['Path', 'Type', 'Description'],
        secretMounts.map(([p, m]) => [p, m.type + (m.options && m.options.version ? ` v${m.options.version}` : ''), m.description || ''])),
      table('Auth methods', ['Path', 'Type', 'Description'],
        authMounts.map(([p, m]) => [p, m.type, m.description || '']))));
  if (can('sys/metrics', 'read')) {
    const refresh = async () => {
      try {
        const m = await get('sys/metrics', { query: { format: 'json' } });
        const gauge = (n) => (m.Gauges || []).find((g) => g.Name === n);
        const total = (m.Counters || []).filter((c) => c.Name === 'coffer_requests_total').reduce((a, c) => a + c.Count, 0);
        setChildren(metricsBox, kv([
          ['Requests served', total],
          ['Tokens', gauge('coffer_tokens') ? gauge('coffer_tokens').Value : '—'],
          ['Leases', gauge('coffer_leases') ? gauge('coffer_leases').Value : '—'],
          ['Updated', new Date().toLocaleTimeString()],
        ]));
      } catch (err) {
        setChildren(metricsBox, errorBox(err));
      }
    };
    await refresh();
    const t = setInterval(refresh, 5000);
    onLeave(() => clearInterval(t));
  } else {
    setChildren(metricsBox, h('p', { class: 'muted' }, 'This token may not read metrics.'));
  }
}
