// The main journey, against a real file-storage server with ui = true (not -dev):
// initialise → unseal → log in as root → enable KV v2 → create, edit a secret → version 1 and
// the diff → a policy with an HCL error, then fixed → a token with it → log in as that token
// and see only what it may → log out. axe-core runs on every screen; screenshots are kept.
import { test } from 'node:test';
import { startServer, launch, check, checkEqual, axe, shot, heading, checkCount, axeReport } from './lib.mjs';

test('initialise, unseal, log in, KV v2, policies, tokens, a limited token, log out', async () => {
  const server = await startServer();
  const b = await launch();
  const { page } = b;
  const secretsSeen = [];
  try {
    // Security headers on the UI, and / redirects to /ui/.
    const res = await page.goto(`${server.url}/`);
    check(page.url().endsWith('/ui/'), `/ redirects to /ui/ (got ${page.url()})`);
    const hdr = res.headers();
    check(/default-src 'self'/.test(hdr['content-security-policy']), 'CSP default-src self');
    check(/frame-ancestors 'none'/.test(hdr['content-security-policy']), 'CSP frame-ancestors none');
    check(!/unsafe-inline/.test(hdr['content-security-policy']), 'CSP has no unsafe-inline');
    checkEqual(hdr['x-frame-options'], 'DENY');
    checkEqual(hdr['x-content-type-options'], 'nosniff');

    // Initialise.
    await heading(page, 'Initialise Coffer');
    await axe(page, 'init');
    await shot(page, 'init');
    await page.getByLabel('Key shares').fill('3');
    await page.getByLabel('Key threshold').fill('2');
    await page.getByRole('button', { name: 'Initialise' }).click();
    await heading(page, 'Coffer is initialised');
    const keys = await page.locator('code.key-share').allTextContents();
    const root = (await page.locator('code.root-token').textContent()).trim();
    checkEqual(keys.length, 3, 'three key shares shown');
    check(root.length > 10, 'root token shown');
    secretsSeen.push(root, ...keys);
    check(await page.getByRole('link', { name: 'Download keys (JSON)' }).isVisible(), 'keys can be downloaded');
    await axe(page, 'init-keys');

    // Unseal with two of three shares.
    await page.getByRole('button', { name: 'Continue to unseal' }).click();
    await heading(page, 'Unseal Coffer');
    await axe(page, 'unseal');
    await shot(page, 'unseal');
    await page.getByLabel('Unseal key share').fill(keys[0]);
    await page.getByRole('button', { name: 'Unseal', exact: true }).click();
    await page.locator('#unseal-progress').filter({ hasText: '1 of 2' }).waitFor();
    check(true, 'unseal progress 1 of 2');
    await page.getByLabel('Unseal key share').fill(keys[1]);
    await page.getByRole('button', { name: 'Unseal', exact: true }).click();

    // Log in with the root token.
    await heading(page, 'Log in to Coffer');
    await axe(page, 'login');
    await shot(page, 'login');
    await page.getByLabel('Token').fill(root);
    await page.getByRole('button', { name: 'Log in' }).first().click();
    await heading(page, 'Dashboard');
    check(!page.url().includes(root), 'the token is not in the URL');
    checkEqual(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    check(await page.evaluate(() => Object.values(sessionStorage).length === 1), 'the token is in sessionStorage');
    await page.locator('dd', { hasText: 'unsealed' }).first().waitFor();
    await page.locator('section[aria-label="Metrics"] dt', { hasText: 'Requests served' }).waitFor();
    check(true, 'dashboard shows seal state and metrics');
    await axe(page, 'dashboard');
    await shot(page, 'dashboard');

    // Enable KV v2 at kv/.
    await page.getByRole('link', { name: 'Secrets', exact: true }).click();
    await heading(page, 'Secrets engines');
    await page.getByLabel('Path').fill('kv');
    await page.getByLabel('Type').selectOption('kv2');
    await page.getByRole('button', { name: 'Enable engine' }).click();
    await page.getByRole('link', { name: 'kv/' }).waitFor();
    check(await page.getByRole('cell', { name: 'kv v2' }).isVisible(), 'kv/ is a KV v2 mount');
    await axe(page, 'secrets-engines');
    await shot(page, 'secrets-engines');

    // Create a secret.
    await page.getByRole('link', { name: 'kv/' }).click();
    await heading(page, 'kv/');
    await axe(page, 'kv-folder');
    await page.getByRole('link', { name: 'Create secret' }).click();
    await heading(page, 'Create secret');
    await page.getByLabel('Path of the secret').fill('app/db');
    await page.getByLabel('Key', { exact: true }).fill('username');
    await page.getByLabel('Value', { exact: true }).fill('admin');
    await page.getByRole('button', { name: 'Add key' }).click();
    await page.getByLabel('Key', { exact: true }).nth(1).fill('password');
    await page.getByLabel('Value', { exact: true }).nth(1).fill('s3cr3t-v1');
    await axe(page, 'secret-create');
    await shot(page, 'secret-create');
    await page.getByRole('button', { name: 'Save secret' }).click();
    await heading(page, 'app/db');
    await page.getByRole('heading', { name: 'Version 1' }).waitFor();
    const text1 = await page.locator('main').textContent();
    check(!text1.includes('s3cr3t-v1'), 'values are masked until revealed');
    await page.getByRole('button', { name: 'Reveal password' }).click();
    await page.getByText('s3cr3t-v1').waitFor();
    check(true, 'a revealed value is shown');

    // Edit it: version 2.
    await page.getByRole('link', { name: 'Create new version' }).click();
    await heading(page, 'Edit app/db');
    await axe(page, 'secret-edit');
    const pw = page.locator('.kvrow[data-key="password"] input.row-value');
    await pw.fill('s3cr3t-v2');
    await page.getByRole('button', { name: 'Save new version' }).click();
    await page.getByRole('heading', { name: 'Version 2' }).waitFor();
    check(true, 'editing made version 2');
    await axe(page, 'secret');
    await shot(page, 'secret');

    // Version 1 and the diff.
    await page.getByRole('link', { name: 'View version 1' }).click();
    await page.getByRole('heading', { name: 'Version 1' }).waitFor();
    await page.getByRole('button', { name: 'Reveal password' }).click();
    await page.getByText('s3cr3t-v1').waitFor();
    check(true, 'version 1 shows its own value');
    await page.getByLabel('From').selectOption('1');
    await page.getByLabel('To').selectOption('2');
    await page.getByRole('button', { name: 'Show diff' }).click();
    const diff = page.locator('pre.diff');
    await diff.waitFor();
    check((await diff.locator('.del').allTextContents()).some((l) => l.includes('s3cr3t-v1')), 'the diff removes the old value');
    check((await diff.locator('.add').allTextContents()).some((l) => l.includes('s3cr3t-v2')), 'the diff adds the new value');
    check(!(await diff.locator('.add, .del').allTextContents()).some((l) => l.includes('admin')), 'unchanged keys are not marked');
    await axe(page, 'secret-diff');
    await shot(page, 'secret-diff');

    // A policy with an HCL error, then fixed.
    await page.getByRole('link', { name: 'Policies' }).click();
    await heading(page, 'ACL policies');
    await axe(page, 'policies');
    await page.getByRole('link', { name: 'Create policy' }).click();
    await heading(page, 'Create policy');
    await page.getByLabel('Name').fill('app-read');
    const bad = 'path "kv/data/app/*" {\n  capabilities = ["read"\n}\n';
    await page.getByLabel('Policy (HCL)').fill(bad);
    await page.getByRole('button', { name: 'Save policy' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    check((await alert.textContent()).includes('failed to parse policy'), 'the server\'s HCL error is shown');
    checkEqual(await page.getByLabel('Policy (HCL)').getAttribute('aria-invalid'), 'true', 'the editor is marked invalid');
    await axe(page, 'policy-error');
    await shot(page, 'policy-error');
    const good = [
      'path "kv/data/app/*" {\n  capabilities = ["read"]\n}',
      'path "kv/metadata/app/*" {\n  capabilities = ["read", "list"]\n}',
      'path "kv/metadata/" {\n  capabilities = ["list"]\n}',
      '',
    ].join('\n');
    await page.getByLabel('Policy (HCL)').fill(good);
    await page.getByRole('button', { name: 'Save policy' }).click();
    await heading(page, 'Policy app-read');
    check((await page.locator('pre.hcl').textContent()).includes('kv/metadata/app/*'), 'the saved policy is shown');
    await axe(page, 'policy-view');

    // Access screen (root sees auth methods).
    await page.getByRole('link', { name: 'Access' }).click();
    await heading(page, 'Auth methods');
    check(await page.getByRole('cell', { name: 'token/', exact: true }).isVisible(), 'token/ auth method listed');
    await axe(page, 'access');
    await shot(page, 'access');

    // A token with the policy.
    await page.getByRole('link', { name: 'Tokens' }).click();
    await heading(page, 'Tokens');
    await page.getByLabel('Policies (comma separated)').fill('app-read');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('button', { name: 'Reveal new token' }).click();
    const limited = (await page.locator('.result .secret').textContent()).trim();
    check(limited.length > 10 && !limited.includes('•'), 'the new token is shown on request');
    secretsSeen.push(limited);
    await axe(page, 'tokens');
    await shot(page, 'tokens');

    // Log out, log in as that token.
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading(page, 'Log in to Coffer');
    checkEqual(await page.evaluate(() => sessionStorage.length), 0, 'logging out forgets the token');
    await page.getByLabel('Token').fill(limited);
    await page.getByRole('button', { name: 'Log in' }).first().click();
    await heading(page, 'Dashboard');
    const nav = await page.locator('#nav a').allTextContents();
    for (const hidden of ['Policies', 'Access', 'Leases', 'Audit devices', 'Plugins']) {
      check(!nav.includes(hidden), `a limited token does not see ${hidden}`);
    }
    check(nav.includes('Secrets'), 'a limited token sees Secrets');
    await axe(page, 'dashboard-limited');
    check(await page.locator('section[aria-label="Metrics"]').getByText('may not read metrics').isVisible(), 'no metrics for a limited token');
    await page.getByRole('link', { name: 'Secrets', exact: true }).click();
    await heading(page, 'Secrets engines');
    const mounts = await page.locator('main table tbody tr td:first-child').allTextContents();
    check(mounts.includes('kv/'), 'the limited token sees kv/');
    check(!mounts.includes('sys/') && !(await page.getByRole('button', { name: 'Enable engine' }).count()), 'and nothing it may not use');
    await page.getByRole('link', { name: 'kv/' }).click();
    await page.getByRole('button', { name: 'Expand app/' }).click();
    await page.getByRole('link', { name: 'db', exact: true }).waitFor();
    check(await page.getByRole('button', { name: 'Expand app/' }).getAttribute('aria-expanded') === 'true', 'a folder expands in place');
    await axe(page, 'kv-tree-limited');
    await page.getByRole('link', { name: 'db', exact: true }).click();
    await heading(page, 'app/db');
    await page.getByRole('heading', { name: 'Version 2' }).waitFor();
    checkEqual(await page.getByRole('link', { name: 'Create new version' }).count(), 0, 'no edit link without update');
    checkEqual(await page.getByRole('button', { name: 'Delete all versions' }).count(), 0, 'no delete without delete');
    await axe(page, 'secret-limited');
    await shot(page, 'secret-limited');
    await page.getByRole('link', { name: 'Tools' }).click();
    await heading(page, 'Tools');
    check(await page.getByRole('form', { name: 'Wrap', exact: true }).isVisible(), 'the default policy allows wrapping');
    checkEqual(await page.getByRole('form', { name: 'Random bytes' }).count(), 0, 'but not random bytes: not offered');
    // A page it may not use shows the server's message.
    await page.goto(`${server.url}/ui/#/policies`);
    await heading(page, 'Something went wrong');
    check((await page.getByRole('alert').textContent()).includes('permission denied'), 'the server\'s 403 message is shown');

    await page.getByRole('button', { name: 'Log out' }).click();
    await heading(page, 'Log in to Coffer');
    checkEqual(await page.evaluate(() => sessionStorage.length), 0, 'logged out');

    // Nothing secret went to the console, no script error, no CSP violation.
    const logged = b.consoleLines.join('\n');
    check(!secretsSeen.some((s) => logged.includes(s)) && !logged.includes('s3cr3t'), 'no secret in the console');
    check(!/Content Security Policy/i.test(logged), `no CSP violation: ${logged}`);
    checkEqual(b.pageErrors.length, 0, `no page errors: ${b.pageErrors.join('; ')}`);
  } finally {
    await b.close();
    await server.stop();
    process.stdout.write(`# flow: ${checkCount()} checks; ${axeReport('flow')}\n`);
  }
});
