// Hostile secret names, values, metadata, descriptions and display names must show literally:
// no markup is ever parsed from data, so no script runs and no element is injected.
import { test } from 'node:test';
import { startServer, launch, check, checkEqual, axe, heading, shot, checkCount, axeReport } from './lib.mjs';

const HOSTILE = [
  '<script>window.__xss="script"</script>',
  '<img src=x onerror="window.__xss=\'img\'">',
  '"><svg onload="window.__xss=\'svg\'">',
  "javascript:window.__xss='href'",
  '<iframe srcdoc="<script>parent.__xss=1</script>">',
  '{{constructor.constructor("window.__xss=1")()}}',
];
// A KV name cannot hold "/" as itself (it separates folders), so names use the others.
const NAMES = ['<img src=x onerror="window.__xss=1">', '"><svg onload="window.__xss=2">', "javascript:window.__xss='3'"];

const enc = (p) => p.split('/').map(encodeURIComponent).join('/');

test('hostile names and values are shown as text and never run', async () => {
  const root = 'xss-root-token';
  const server = await startServer({ dev: root });
  const b = await launch();
  const { page } = b;
  try {
    const data = Object.fromEntries(HOSTILE.map((v, i) => [`k${i}${v}`, v]));
    for (const n of NAMES) {
      let r = await server.api('POST', `secret/data/${enc(n)}`, { data });
      checkEqual(r.status, 200, `write ${n}: ${JSON.stringify(r.json)}`);
      r = await server.api('POST', `secret/data/${enc(n)}`, { data: { ...data, extra: HOSTILE[1] } });
      r = await server.api('POST', `secret/metadata/${enc(n)}`, { custom_metadata: { [HOSTILE[0]]: HOSTILE[1] } });
      checkEqual(r.status, 204, `metadata ${n}`);
    }
    await server.api('POST', `secret/data/${enc(`${HOSTILE[2]}/inner`)}`, { data: { a: HOSTILE[0] } });
    checkEqual((await server.api('POST', 'sys/mounts/hostile', { type: 'kv', description: HOSTILE[1] })).status, 204);
    const tok = await server.api('POST', 'auth/token/create', { policies: ['root'], display_name: HOSTILE[1] });
    const hostileToken = tok.json.auth.client_token;

    await page.goto(`${server.url}/ui/`);
    await heading(page, 'Log in to Coffer');
    await page.getByLabel('Token').fill(hostileToken);
    await page.getByRole('button', { name: 'Log in' }).first().click();
    await heading(page, 'Dashboard');
    check((await page.locator('#session').textContent()).includes('onerror'), 'the hostile display name is shown as text');
    check(await page.getByRole('cell', { name: HOSTILE[1], exact: true }).first().isVisible(), 'the hostile mount description is shown as text');

    await page.goto(`${server.url}/ui/#/kv/${encodeURIComponent('secret/')}/`);
    await heading(page, 'secret/');
    if (process.env.DEBUG) console.error(await page.locator('main').textContent());
    for (const n of NAMES) {
      check(await page.getByRole('link', { name: n, exact: true }).isVisible(), `the name ${n} is listed literally`);
    }
    check(await page.getByRole('link', { name: `${HOSTILE[2]}/`, exact: true }).isVisible(), 'a hostile folder is listed literally');
    await axe(page, 'xss-list');
    await shot(page, 'xss-list');

    for (const n of NAMES) {
      await page.getByRole('link', { name: n, exact: true }).click();
      await heading(page, n);
      const reveal = page.getByRole('button', { name: /^Reveal / });
      while (await reveal.count()) await reveal.first().click();
      const text = await page.locator('main').textContent();
      for (const v of HOSTILE) check(text.includes(v), `value ${v} shown literally under ${n}`);
      // Diff and metadata with hostile content too.
      await page.getByRole('button', { name: 'Show diff' }).click();
      await page.locator('pre.diff').waitFor();
      check((await page.locator('pre.diff').textContent()).includes('onerror'), 'the diff shows hostile text literally');
      checkEqual(await page.locator('.kvrow input.row-key').first().inputValue(), HOSTILE[0], 'hostile metadata key in a field');
      await page.goBack();
      await heading(page, 'secret/');
    }
    await page.getByRole('link', { name: `${HOSTILE[2]}/`, exact: true }).click();
    await page.getByRole('link', { name: 'inner', exact: true }).click();
    await heading(page, 'inner');
    await page.getByRole('button', { name: 'Reveal a' }).click();
    check((await page.locator('main').textContent()).includes(HOSTILE[0]), 'a value in a hostile folder shows literally');
    await axe(page, 'xss-secret');
    await shot(page, 'xss-secret');

    // A hostile policy name and policy text.
    const pname = '<img src=x onerror="window.__xss=9">';
    const pr = await server.api('PUT', `sys/policies/acl/${encodeURIComponent(pname)}`, { policy: `# ${HOSTILE[0]}\npath "x/*" {\n  capabilities = ["read"]\n}\n` });
    check(pr.status === 204 || pr.status === 200, `hostile policy written: ${pr.status}`);
    await page.goto(`${server.url}/ui/#/policies`);
    await heading(page, 'ACL policies');
    await page.getByRole('link', { name: pname, exact: true }).click();
    await heading(page, `Policy ${pname}`);
    check((await page.locator('pre.hcl').textContent()).includes(HOSTILE[0]), 'hostile policy text shown literally');
    await axe(page, 'xss-policy');

    const injected = await page.evaluate(() => ({
      xss: window.__xss,
      elements: document.querySelectorAll('body img, body script:not([src]), body svg, body iframe').length,
    }));
    checkEqual(injected.xss, undefined, 'no hostile script ran');
    checkEqual(injected.elements, 0, 'no element was injected');
    const logged = b.consoleLines.join('\n');
    check(!/Content Security Policy/i.test(logged), `nothing even tried to run inline: ${logged}`);
    checkEqual(b.pageErrors.length, 0, `no page errors: ${b.pageErrors.join('; ')}`);
  } finally {
    await b.close();
    await server.stop();
    process.stdout.write(`# xss: ${checkCount()} checks; ${axeReport('xss')}\n`);
  }
});
