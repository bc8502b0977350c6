// Flows a Node.js application runs through node-vault, against the server at VAULT_ADDR with the
// root token in VAULT_TOKEN: response wrapping (unwrapping with the wrapping token as the
// client's own token, node-vault's only way), auth method listing, token roles, leases and KV.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const nodeVault = require('node-vault');
const endpoint = process.env.VAULT_ADDR;
const root = process.env.VAULT_TOKEN;
const client = (token = root) => nodeVault({ apiVersion: 'v1', endpoint, token });
const suffix = Math.random().toString(16).slice(2, 10);

test('a wrapped secret is unwrapped once, with the wrapping token as the client token', async () => {
  const v = client();
  const wrapped = await v.write('sys/wrapping/wrap', { db: 'pw' }, { headers: { 'X-Vault-Wrap-TTL': '90s' } });
  assert.equal(wrapped.wrap_info.ttl, 90);
  const app = client(wrapped.wrap_info.token);
  const inner = await app.unwrap();
  assert.deepEqual(inner.data, { db: 'pw' });
  await assert.rejects(client(wrapped.wrap_info.token).unwrap(), (e) => {
    assert.equal(e.response.statusCode, 400);
    assert.match(e.message, /wrapping token is not valid or does not exist/);
    return true;
  });
});

test('auth methods are listed with their token type, enabled and disabled', async () => {
  const v = client();
  await v.enableAuth({ mount_point: `nv-up-${suffix}`, type: 'userpass', description: 'node-vault' });
  const auths = await v.auths();
  const m = auths.data[`nv-up-${suffix}/`];
  assert.equal(m.type, 'userpass');
  assert.equal(m.config.token_type, 'default-service');
  assert.equal(auths.data['token/'].config.token_type, 'default-service');
  await v.write(`auth/nv-up-${suffix}/users/bob`, { password: 'pw', token_policies: 'default' });
  const login = await client(null).userpassLogin({ mount_point: `nv-up-${suffix}`, username: 'bob', password: 'pw' });
  assert.deepEqual(login.auth.policies, ['default']);
  await v.disableAuth({ mount_point: `nv-up-${suffix}` });
  assert.equal((await v.auths()).data[`nv-up-${suffix}/`], undefined);
});

test('token roles: created, read, listed, used to create a token, removed', async () => {
  const v = client();
  const role = `nv-role-${suffix}`;
  await v.addTokenRole({ role_name: role, allowed_policies: 'default,app', orphan: true, period: 7200 });
  const read = await v.getTokenRole({ role_name: role });
  assert.equal(read.data.orphan, true);
  assert.deepEqual(read.data.allowed_policies, ['app', 'default']);
  assert.equal(read.data.token_period, 7200);
  assert.ok((await v.tokenRoles()).data.keys.includes(role));
  // node-vault makes the client use a token it creates: a client of its own for that.
  const t = await client().tokenCreateRole({ role_name: role, policies: ['app'] });
  assert.equal(t.auth.orphan, true);
  assert.deepEqual(t.auth.policies, ['app', 'default']);
  await v.removeTokenRole({ role_name: role });
});

test('leases: a token lease is looked up and revoked, and not renewed through sys/leases', async () => {
  const v = client();
  const t = await client().tokenCreate({ policies: ['default'], ttl: '1h' });
  const keys = (await v.list('sys/leases/lookup/auth/token/create/')).data.keys.filter((k) => !k.endsWith('/'));
  const leases = await Promise.all(keys.map((k) => v.write('sys/leases/lookup', { lease_id: `auth/token/create/${k}` })));
  const mine = leases.filter((l) => l.data.renewable && l.data.ttl > 3000);
  assert.ok(mine.length >= 1, JSON.stringify(leases));
  await assert.rejects(v.renew({ lease_id: mine[0].data.id, increment: 60 }), /tokens cannot be renewed/);
  const renewed = await client().tokenRenew({ token: t.auth.client_token, increment: '2h' });
  assert.equal(renewed.auth.lease_duration, 7200);
  await v.revoke({ lease_id: mine[0].data.id });
  await assert.rejects(v.write('sys/leases/lookup', { lease_id: mine[0].data.id }), (e) => e.response.statusCode === 400);
});

test('KV version 2: write with check-and-set, read, list, delete', async () => {
  const v = client();
  const path = `secret/data/nv/app-${suffix}`;
  await v.write(path, { data: { user: 'u' }, options: { cas: 0 } });
  await v.write(path, { data: { user: 'u2' }, options: { cas: 1 } });
  await assert.rejects(v.write(path, { data: { user: 'u3' }, options: { cas: 1 } }), (e) => e.response.statusCode === 400);
  const read = await v.read(path);
  assert.equal(read.data.data.user, 'u2');
  assert.equal(read.data.metadata.version, 2);
  assert.ok((await v.list('secret/metadata/nv')).data.keys.includes(`app-${suffix}`));
  await v.delete(`secret/metadata/nv/app-${suffix}`);
  await assert.rejects(v.read(path), (e) => e.response.statusCode === 404);
});
