// Every other screen, against a -dev server: KV v1, version delete/undelete/destroy, custom
// metadata, cubbyhole, transit, database (connections, roles, credentials), auth methods (userpass login, AppRole), identity (entities,
// groups, aliases, resulting policies), tokens, capabilities,
// leases, audit devices, plugins, tools. axe-core on each; screenshots kept.
import { test } from 'node:test';
import { join } from 'node:path';
import { startServer, launch, check, checkEqual, axe, shot, heading, checkCount, axeReport } from './lib.mjs';

test('every screen works and passes axe', async () => {
  const root = 'screens-root-token';
  const server = await startServer({ dev: root });
  const b = await launch();
  const { page } = b;
  const go = async (hash, title) => {
    await page.goto(`${server.url}/ui/${hash}`);
    await heading(page, title);
  };
  const submit = async (form, button) => {
    const f = page.getByRole('form', { name: form });
    await f.getByRole('button', { name: button }).click();
    return f;
  };
  try {
    await page.goto(`${server.url}/ui/`);
    await page.getByLabel('Token').fill(root);
    await page.getByRole('button', { name: 'Log in' }).first().click();
    await heading(page, 'Dashboard');

    // Keyboard: Tab reaches the navigation with a visible focus ring, Enter follows a link and
    // the focus lands on the new page's heading.
    await page.locator('a.brand').focus();
    let focused = null;
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => {
        const e = document.activeElement;
        const st = getComputedStyle(e);
        return { text: e.textContent.trim(), outline: st.outlineStyle, width: parseFloat(st.outlineWidth) };
      });
      check(focused.outline !== 'none' && focused.width >= 2, `visible focus on ${focused.text}`);
      if (focused.text === 'Secrets') break;
    }
    checkEqual(focused.text, 'Secrets', 'Tab reaches the Secrets link');
    await page.keyboard.press('Enter');
    await heading(page, 'Secrets engines');
    checkEqual(await page.evaluate(() => document.activeElement.tagName), 'H1', 'focus moves to the new heading');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.closest('main') !== null), 'and Tab continues in the page');

    // KV v1: enable, create, edit, delete.
    await go('#/secrets', 'Secrets engines');
    await page.getByLabel('Path').fill('old');
    await page.getByLabel('Type').selectOption('kv1');
    await page.getByRole('button', { name: 'Enable engine' }).click();
    await page.getByRole('link', { name: 'old/' }).click();
    await heading(page, 'old/');
    await page.getByRole('link', { name: 'Create secret' }).click();
    await page.getByLabel('Path of the secret').fill('team/config');
    await page.getByLabel('Key', { exact: true }).fill('url');
    await page.getByLabel('Value', { exact: true }).fill('https://example.invalid');
    await page.getByRole('button', { name: 'Save secret' }).click();
    await heading(page, 'team/config');
    await page.getByRole('button', { name: 'Reveal url' }).click();
    check(await page.getByText('https://example.invalid').isVisible(), 'KV v1 secret saved and shown');
    await axe(page, 'kv1-secret');
    await page.getByRole('link', { name: 'Edit' }).click();
    await heading(page, 'Edit team/config');
    await page.locator('.kvrow[data-key="url"] input.row-value').fill('https://example.invalid/v2');
    await page.getByRole('button', { name: 'Save new version' }).click();
    await heading(page, 'team/config');
    await page.getByRole('button', { name: 'Reveal url' }).click();
    check(await page.getByText('https://example.invalid/v2').isVisible(), 'KV v1 secret edited');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await heading(page, 'old/team/');
    check(await page.getByText('No secrets here yet.').isVisible(), 'KV v1 secret deleted');

    // JSON mode keeps values that are not strings, also when edited as rows afterwards.
    await go(`#/kv-new/${encodeURIComponent('secret/')}/`, 'Create secret');
    await page.getByLabel('Path of the secret').fill('json/one');
    await page.getByLabel('Edit as JSON').check();
    await page.getByLabel('Data as a JSON object').fill('{"n": 3, "list": ["a", "b"], "s": "x"}');
    await axe(page, 'secret-json');
    await page.getByRole('button', { name: 'Save secret' }).click();
    await heading(page, 'json/one');
    await page.getByRole('link', { name: 'Create new version' }).click();
    await heading(page, 'Edit json/one');
    await page.locator('.kvrow[data-key="s"] input.row-value').fill('y');
    await page.getByRole('button', { name: 'Save new version' }).click();
    await page.getByRole('heading', { name: 'Version 2' }).waitFor();
    const j = (await server.api('GET', 'secret/data/json/one')).json.data.data;
    check(j.n === 3 && JSON.stringify(j.list) === '["a","b"]' && j.s === 'y', `JSON values kept: ${JSON.stringify(j)}`);

    // KV v2: delete, undelete, destroy a version; custom metadata.
    await server.api('POST', 'secret/data/svc/api', { data: { key: 'one' } });
    await server.api('POST', 'secret/data/svc/api', { data: { key: 'two' } });
    await go(`#/kv/${encodeURIComponent('secret/')}/svc/api`, 'svc/api');
    await page.getByRole('button', { name: 'Delete this version' }).click();
    await page.getByText('This version was deleted').waitFor();
    await page.getByRole('button', { name: 'Undelete' }).click();
    await page.getByRole('button', { name: 'Reveal key' }).click();
    check(await page.getByText('two').isVisible(), 'undeleted version 2 readable');
    await page.getByRole('link', { name: 'View version 1' }).click();
    await page.getByRole('heading', { name: 'Version 1' }).waitFor();
    await page.getByRole('button', { name: 'Destroy this version' }).click();
    await page.getByText('This version was destroyed').waitFor();
    check(true, 'version 1 destroyed');
    await page.getByLabel('Metadata key').fill('owner');
    await page.getByLabel('Metadata value').fill('team-a');
    await page.getByLabel('Maximum versions kept (0: the mount default)').fill('5');
    await submit('Metadata', 'Save metadata');
    await page.getByText('Metadata saved.').waitFor();
    const meta = await server.api('GET', 'secret/metadata/svc/api');
    checkEqual(meta.json.data.custom_metadata.owner, 'team-a', 'custom metadata saved');
    checkEqual(meta.json.data.max_versions, 5, 'max_versions saved');
    await axe(page, 'kv2-destroyed');

    // Cubbyhole.
    await go(`#/kv/${encodeURIComponent('cubbyhole/')}/`, 'cubbyhole/');
    check(await page.getByText('Cubbyhole: private to this token').isVisible(), 'cubbyhole screen');
    await page.getByRole('link', { name: 'Create secret' }).click();
    await page.getByLabel('Path of the secret').fill('note');
    await page.getByLabel('Key', { exact: true }).fill('text');
    await page.getByLabel('Value', { exact: true }).fill('only mine');
    await page.getByRole('button', { name: 'Save secret' }).click();
    await heading(page, 'note');
    await axe(page, 'cubbyhole');

    // Transit.
    await server.api('POST', 'sys/mounts/transit', { type: 'transit' });
    await go(`#/transit/${encodeURIComponent('transit/')}`, 'Transit keys in transit/');
    await axe(page, 'transit-keys');
    await page.getByLabel('Name').fill('orders');
    await page.getByRole('button', { name: 'Create key' }).click();
    await heading(page, 'Key orders');
    const enc = await submit('Encrypt', 'Encrypt');
    await page.getByLabel('Plaintext', { exact: true }).fill('card 4111');
    await enc.getByRole('button', { name: 'Encrypt' }).click();
    const ct = (await page.locator('code.ciphertext').first().textContent()).trim();
    check(ct.startsWith('vault:v1:'), `ciphertext ${ct}`);
    await page.getByLabel('Ciphertext', { exact: true }).fill(ct);
    await submit('Decrypt', 'Decrypt');
    await page.getByRole('button', { name: 'Reveal plaintext' }).click();
    check(await page.getByText('card 4111').isVisible(), 'decrypt returns the plaintext');
    await submit('Rotate', 'Rotate key');
    await page.getByRole('cell', { name: '2', exact: true }).first().waitFor();
    await page.getByLabel('Ciphertext to rewrap').fill(ct);
    await submit('Rewrap', 'Rewrap');
    await page.getByText(/vault:v2:/).waitFor();
    check(true, 'rotate and rewrap to v2');
    await page.getByLabel('Deletion allowed').check();
    await submit('Configuration', 'Save configuration');
    await page.getByRole('row', { name: /Deletion allowed true/ }).waitFor();
    check(true, 'key configuration saved');
    await axe(page, 'transit');
    await shot(page, 'transit');

    // Database: a connection, a role, generated credentials, on the PostgreSQL superuser of
    // COFFER_TEST_PG_ADMIN_URL (scripts/test sets it); without it, a refused connection.
    await server.api('POST', 'sys/mounts/database', { type: 'database' });
    await go(`#/database/${encodeURIComponent('database/')}`, 'Databases in database/');
    await axe(page, 'database-empty');
    const pgUrl = process.env.COFFER_TEST_PG_ADMIN_URL;
    await page.getByLabel('Connection name').fill('pg');
    if (pgUrl) {
      const u = new URL(pgUrl);
      await page.getByLabel('Connection URL').fill(`postgresql://{{username}}:{{password}}@${u.host}${u.pathname}?sslmode=disable`);
      await page.getByLabel('Root username').fill(decodeURIComponent(u.username));
      await page.getByLabel('Root password').fill(decodeURIComponent(u.password));
      await page.getByLabel('Allowed roles (comma-separated globs)').fill('*');
      await submit('Add a connection', 'Save connection');
      await page.getByRole('cell', { name: 'postgresql-database-plugin' }).waitFor();
      await page.getByLabel('Role name').fill('ro');
      await page.getByLabel('Creation statements (run in one transaction)')
        .fill("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';");
      await page.getByLabel('Default TTL').fill('10m');
      await submit('Add a role', 'Save role');
      await page.getByRole('button', { name: 'Generate credentials for ro' }).click();
      await page.getByText(/Lease database\/creds\/ro\//).waitFor();
      check((await page.locator('#db-result code').first().textContent()).startsWith('v-token-ro-'), 'a username of OpenBao\'s shape');
      await page.getByRole('button', { name: 'Reveal password' }).click();
      check(!(await page.locator('#db-result .secret').first().textContent()).includes('•'), 'the password is revealed');
      await axe(page, 'database');
      await shot(page, 'database');
      await server.api('POST', 'sys/leases/revoke-prefix/database/creds/ro', {});
    } else {
      if (process.env.CI && process.env.CI !== 'false') throw new Error('COFFER_TEST_PG_ADMIN_URL is not set in CI');
      console.log('\n*** SKIPPED: COFFER_TEST_PG_ADMIN_URL is not set: the database screen is checked without credentials ***\n');
      await page.getByLabel('Connection URL').fill('postgresql://{{username}}:{{password}}@127.0.0.1:1/x?sslmode=disable');
      await submit('Add a connection', 'Save connection');
      await page.getByText(/error creating database object/).waitFor();
      check(true, 'an unreachable database is refused with a clear error');
    }

    // Access: userpass (and logging in with it), AppRole, tune.
    await go('#/access', 'Auth methods');
    await page.getByLabel('Path').fill('people');
    await page.getByLabel('Type').selectOption('userpass');
    await page.getByRole('button', { name: 'Enable method' }).click();
    await page.getByRole('link', { name: 'Manage people/' }).click();
    await heading(page, 'Users of people/');
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('correct horse');
    await page.getByLabel('Policies (comma separated)').fill('default');
    await page.getByRole('button', { name: 'Save user' }).click();
    await page.getByRole('cell', { name: 'alice', exact: true }).waitFor();
    await axe(page, 'userpass');
    await go('#/access', 'Auth methods');
    await page.getByLabel('Path').fill('machines');
    await page.getByLabel('Type').selectOption('approle');
    await page.getByRole('button', { name: 'Enable method' }).click();
    await page.getByRole('link', { name: 'Manage machines/' }).click();
    await heading(page, 'AppRole roles of machines/');
    await page.getByLabel('Role name').fill('ci');
    await page.getByLabel('Policies (comma separated)').fill('default');
    await page.getByRole('button', { name: 'Save role' }).click();
    await page.getByRole('button', { name: 'Role ID of ci' }).click();
    await page.getByRole('heading', { name: 'Role ID of ci' }).waitFor();
    await page.getByRole('button', { name: 'New secret ID for ci' }).click();
    await page.getByRole('heading', { name: 'New secret ID for ci' }).waitFor();
    check(true, 'AppRole role-id and secret-id');
    await axe(page, 'approle');
    await go(`#/access/tune/${encodeURIComponent('people')}`, 'Tune people/');
    await page.getByLabel('Listed on the login page').selectOption('unauth');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    await axe(page, 'tune');
    for (const [path, type] of [['corp-ldap', 'ldap'], ['mtls', 'cert'], ['ci-jwt', 'jwt'], ['pods', 'kubernetes'], ['sso', 'oidc']]) {
      await server.api('POST', `sys/auth/${path}`, { type, config: { listing_visibility: 'unauth' } });
    }
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading(page, 'Log in to Coffer');
    // Each listed mount is offered by name; the unlisted AppRole mount is not.
    const offered = await page.locator('#login-method option').evaluateAll((os) => os.map((o) => o.value));
    check(offered.includes('userpass:people') && !offered.some((v) => v.startsWith('approle:')),
      'the login screen offers the listed userpass mount (and no unlisted one)');
    check(offered.includes('ldap:corp-ldap') && offered.includes('cert:mtls') && offered.includes('jwt:ci-jwt'),
      'listed LDAP, cert and JWT mounts are offered');
    await page.getByLabel('Method').selectOption('jwt:ci-jwt');
    await page.getByLabel('JWT', { exact: true }).fill('not-a-jwt');
    await page.getByRole('button', { name: 'Log in' }).last().click();
    await page.getByRole('alert').waitFor();
    check((await page.getByRole('alert').textContent()).length > 0, 'a JWT login with a malformed token shows the server\'s error');
    check(offered.includes('kubernetes:pods') && offered.includes('oidc:sso'), 'listed Kubernetes and OIDC mounts are offered');
    await page.getByLabel('Method').selectOption('kubernetes:pods');
    await page.getByLabel('Role', { exact: true }).fill('web');
    await page.getByLabel('Service account token').fill('not-a-jwt');
    await page.getByRole('button', { name: 'Log in' }).last().click();
    await page.getByRole('alert').waitFor();
    check((await page.getByRole('alert').textContent()).length > 0, 'a Kubernetes login with an unconfigured mount shows the server\'s error');
    await page.getByLabel('Method').selectOption('oidc:sso');
    await page.getByRole('button', { name: 'Continue to the provider' }).click();
    await page.getByRole('alert').waitFor();
    check((await page.getByRole('alert').textContent()).length > 0, 'an OIDC login on an unconfigured mount shows the server\'s error and stays on the page');
    await page.getByLabel('Method').selectOption('cert:mtls');
    await page.getByRole('button', { name: 'Log in with my certificate' }).click();
    await page.getByRole('alert').waitFor();
    check(/no client certificate found/.test(await page.getByRole('alert').textContent()),
      'a cert login over plain HTTP says no certificate was presented');
    await page.getByLabel('Method').selectOption('userpass:people');
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Log in' }).last().click();
    await page.getByRole('alert').waitFor();
    check(/invalid|denied/i.test(await page.getByRole('alert').textContent()), 'a failed login shows the server\'s message');
    await page.getByLabel('Password').fill('correct horse');
    await page.getByRole('button', { name: 'Log in' }).last().click();
    await heading(page, 'Dashboard');
    check((await page.locator('#session').textContent()).includes('people-alice'), 'logged in with userpass');
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading(page, 'Log in to Coffer');
    await page.getByLabel('Token').fill(root);
    await page.getByRole('button', { name: 'Log in' }).first().click();
    await heading(page, 'Dashboard');

    // Identity: alice's login made an entity with an alias on people/; groups nest, and the
    // entity page shows direct and inherited membership and the policies both bring.
    await go('#/identity', 'Identity');
    let f = page.getByRole('form', { name: 'Create a group' });
    await f.getByLabel('Name').fill('platform');
    await f.getByLabel('Policies (comma separated)').fill('platform-read');
    await f.getByRole('button', { name: 'Create group' }).click();
    await heading(page, 'Group platform');
    const platform = decodeURIComponent(page.url().split('/group/')[1]);
    const eid = (await server.api('POST', 'identity/lookup/entity', { alias_name: 'alice',
      alias_mount_accessor: (await server.api('GET', 'sys/auth')).json.data['people/'].accessor })).json.data.id;
    const team = await server.api('POST', 'identity/group', { name: 'sre', policies: ['sre-ops'], member_entity_ids: [eid] });
    await server.api('POST', `identity/group/id/${platform}`, { member_group_ids: [team.json.data.id], policies: ['platform-read'] });
    await go('#/identity', 'Identity');
    await page.getByRole('cell', { name: /alice \(auth\/people\/\)/ }).waitFor();
    await page.getByRole('link', { name: /^entity_/ }).first().click();
    await heading(page, /^Entity entity_/);
    await page.getByRole('table', { name: 'Aliases' }).getByRole('cell', { name: 'alice', exact: true }).waitFor();
    const membership = page.getByRole('table', { name: 'Group membership' });
    await membership.getByRole('row', { name: /sre direct sre-ops/ }).waitFor();
    await membership.getByRole('row', { name: /platform inherited/ }).waitFor();
    const resulting = page.getByRole('table', { name: 'Resulting policies' });
    await resulting.getByRole('row', { name: /sre-ops group sre/ }).waitFor();
    await resulting.getByRole('row', { name: /platform-read group platform/ }).waitFor();
    check(true, 'entity page: alias, direct and inherited groups, resulting policies');
    await axe(page, 'identity-entity');
    await shot(page, 'identity-entity');
    await page.getByRole('link', { name: 'sre', exact: true }).click();
    await heading(page, 'Group sre');
    await page.getByRole('table', { name: 'Parent groups' }).getByRole('link', { name: 'platform' }).waitFor();
    await page.getByRole('table', { name: 'Resulting policies' }).getByRole('row', { name: /platform-read parent group platform/ }).waitFor();
    check(true, 'group page: members, parents and the policies they pass down');
    await axe(page, 'identity-group');
    await go('#/identity', 'Identity');
    f = page.getByRole('form', { name: 'Create a group' });
    await f.getByLabel('Name').fill('directory-admins');
    await f.getByLabel('Type').selectOption('external');
    await f.getByRole('button', { name: 'Create group' }).click();
    await heading(page, 'Group directory-admins');
    f = page.getByRole('form', { name: 'Bind to an auth method\'s group' });
    await f.getByLabel('Group name on the auth mount').fill('admins');
    await f.getByLabel('Auth mount', { exact: true }).selectOption({ label: 'people/ (userpass)' });
    await f.getByRole('button', { name: 'Create alias' }).click();
    await page.getByRole('table', { name: 'Group alias' }).getByRole('cell', { name: 'admins', exact: true }).waitFor();
    check(true, 'an external group is bound to an auth mount\'s group');
    await axe(page, 'identity-external-group');
    await go('#/identity', 'Identity');
    await axe(page, 'identity');

    // Tokens: lookup and revoke by accessor, capabilities.
    const t = await server.api('POST', 'auth/token/create', { policies: ['default'], display_name: 'victim' });
    await go('#/tokens', 'Tokens');
    f = page.getByRole('form', { name: 'Look up a token' });
    await f.getByLabel('Token or accessor').fill(t.json.auth.accessor);
    await f.getByLabel('It is').selectOption('accessor');
    await f.getByRole('button', { name: 'Look up' }).click();
    await f.locator('pre.json').filter({ hasText: 'token-victim' }).waitFor();
    f = page.getByRole('form', { name: 'Revoke a token' });
    await f.getByLabel('Token or accessor').fill(t.json.auth.client_token);
    await f.getByRole('button', { name: 'Revoke' }).click();
    await f.getByText('Revoked.').waitFor();
    checkEqual((await server.api('GET', 'auth/token/lookup-self', null, t.json.auth.client_token)).status, 403, 'the token is revoked');
    f = page.getByRole('form', { name: 'Check capabilities' });
    await f.getByLabel('Path').fill('secret/data/x');
    await f.getByLabel('Token (empty: this token)').fill(t.json.auth.client_token);
    await f.getByRole('button', { name: 'Check' }).click();
    await f.getByRole('alert').or(f.locator('.caps')).first().waitFor();
    await f.getByLabel('Token (empty: this token)').fill('');
    await f.getByRole('button', { name: 'Check' }).click();
    await f.locator('.caps').filter({ hasText: 'root' }).waitFor();
    check(true, 'capabilities checker');
    await axe(page, 'tokens-root');

    // A policy is viewed and deleted.
    await server.api('PUT', 'sys/policies/acl/short-lived', { policy: 'path "x/*" {\n  capabilities = ["read"]\n}\n' });
    await go('#/policies', 'ACL policies');
    await page.getByRole('link', { name: 'short-lived' }).click();
    await heading(page, 'Policy short-lived');
    await page.getByRole('button', { name: 'Delete' }).click();
    await heading(page, 'ACL policies');
    checkEqual(await page.getByRole('link', { name: 'short-lived' }).count(), 0, 'policy deleted');

    // Leases.
    await go('#/leases', 'Leases');
    f = page.getByRole('form', { name: 'Look up a lease' });
    await f.getByLabel('Lease ID').fill('nope/123');
    await f.getByRole('button', { name: 'Look up' }).click();
    await f.getByRole('alert').waitFor();
    check((await f.getByRole('alert').textContent()).length > 8, 'a lease error shows the server\'s message');
    await axe(page, 'leases');
    await shot(page, 'leases');

    // Audit devices.
    await go('#/audit', 'Audit devices');
    await page.getByLabel('File path (file), address (socket) or tag (syslog)').fill(join(server.dir, 'audit.log'));
    await page.getByRole('button', { name: 'Enable device' }).click();
    await page.getByRole('cell', { name: 'file/', exact: true }).waitFor();
    await axe(page, 'audit');
    await shot(page, 'audit');
    await page.getByRole('button', { name: 'Disable file/' }).click();
    await page.getByText('No audit device is enabled.').waitFor();
    check(true, 'audit device enabled and disabled');

    // Plugins: the catalog and a refused registration.
    await go('#/plugins', 'Plugin catalog');
    await page.getByLabel('Name').fill('nothing');
    await page.getByLabel('Command (a file in the plugin directory)').fill('nothing');
    await page.getByLabel('SHA-256 of the file (hex)').fill('00'.repeat(32));
    await page.getByRole('button', { name: 'Register' }).click();
    await page.getByRole('alert').waitFor();
    check(true, 'plugin registration error shown');
    await axe(page, 'plugins');
    await shot(page, 'plugins');

    // Tools.
    await go('#/tools', 'Tools');
    f = page.getByRole('form', { name: 'Hash' });
    await f.getByLabel('Input (text)').fill('abc');
    await f.getByRole('button', { name: 'Hash' }).click();
    await f.locator('code.sum').filter({ hasText: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' }).waitFor();
    f = page.getByRole('form', { name: 'Random bytes' });
    await f.getByRole('button', { name: 'Generate' }).click();
    await f.locator('code.random').waitFor();
    f = page.getByRole('form', { name: 'Wrap', exact: true });
    await f.getByLabel('Data to wrap (JSON object)').fill('{"value": "wrapped-secret"}');
    await f.getByRole('button', { name: 'Wrap' }).click();
    await f.getByRole('button', { name: 'Reveal wrapping token' }).click();
    const wt = (await f.locator('.secret').textContent()).trim();
    f = page.getByRole('form', { name: 'Look up a wrapping token' });
    await f.getByLabel('Wrapping token').fill(wt);
    await f.getByRole('button', { name: 'Look up' }).click();
    await f.locator('pre.json').filter({ hasText: 'sys/wrapping/wrap' }).waitFor();
    f = page.getByRole('form', { name: 'Rewrap' });
    await f.getByLabel('Wrapping token').fill(wt);
    await f.getByRole('button', { name: 'Rewrap' }).click();
    await f.getByRole('button', { name: 'Reveal new wrapping token' }).click();
    const wt2 = (await f.locator('.secret').textContent()).trim();
    f = page.getByRole('form', { name: 'Unwrap' });
    await f.getByLabel('Wrapping token').fill(wt2);
    await f.getByRole('button', { name: 'Unwrap' }).click();
    await f.locator('pre.json').filter({ hasText: 'wrapped-secret' }).waitFor();
    check(wt !== wt2, 'wrap, lookup, rewrap, unwrap');
    await axe(page, 'tools');
    await shot(page, 'tools');

    // A token revoked behind the UI's back: the next page sends the user to the login.
    const own = await server.api('POST', 'auth/token/create', { policies: ['default'] });
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading(page, 'Log in to Coffer');
    await page.getByLabel('Token').fill(own.json.auth.client_token);
    await page.getByRole('button', { name: 'Log in' }).first().click();
    await heading(page, 'Dashboard');
    await server.api('POST', 'auth/token/revoke', { token: own.json.auth.client_token });
    await page.goto(`${server.url}/ui/#/policies`);
    await heading(page, 'Log in to Coffer');
    checkEqual(await page.evaluate(() => sessionStorage.length), 0, 'a revoked token is forgotten');

    check(!b.consoleLines.join('\n').includes('wrapped-secret'), 'no secret in the console');
    checkEqual(b.pageErrors.length, 0, `no page errors: ${b.pageErrors.join('; ')}`);
  } finally {
    await b.close();
    await server.stop();
    process.stdout.write(`# screens: ${checkCount()} checks; ${axeReport('screens')}\n`);
  }
});
