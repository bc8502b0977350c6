// The web UI's OIDC login, played by Debian's headless Chromium through playwright-core
// (installed in tests/ui): open Coffer's login page, choose the OIDC mount, continue to the
// provider, pick the user there (oidc-provider-mock lists users as buttons), come back through
// the provider's redirect, and print where the browser ended and the session's token.
//
//   node tests/auth/oidc_ui_login.mjs UI_URL MOUNT USER
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../ui/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const [ui, mount, user] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'coffer-oidc-ui-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(ui);
  await page.getByLabel('Method').selectOption(`oidc:${mount}`);
  await Promise.all([
    page.waitForURL((u) => !u.href.startsWith(ui)),
    page.getByRole('button', { name: 'Continue to the provider' }).click(),
  ]);
  console.log(`provider page: ${page.url()}`);
  await page.click(`button[name="sub"][value="${user}"]`);
  // Back at the UI: the callback page trades the code for a token, then shows the dashboard.
  await page.waitForSelector('#logout');
  console.log(`final URL: ${page.url()}`);
  console.log(`token: ${await page.evaluate(() => sessionStorage.getItem('coffer.token'))}`);
} catch (err) {
  const page = context.pages()[0];
  if (page) console.log(`stuck at ${page.url()}: ${(await page.textContent('body')).replace(/\s+/g, ' ').trim()}`);
  throw err;
} finally {
  await context.close();
  rmSync(dir, { recursive: true, force: true });
}
