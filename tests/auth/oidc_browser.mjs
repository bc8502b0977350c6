// The browser's part of an OIDC login, played by Debian's headless Chromium through
// playwright-core (installed in tests/ui): open the provider's authorization URL, pick the
// user on the provider's page (oidc-provider-mock lists predefined users as buttons), follow
// the redirect to the CLI's local listener, and print where the browser ended and what it shows.
//
//   node tests/auth/oidc_browser.mjs AUTH_URL USER
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../ui/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const [url, user] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'coffer-oidc-chromium-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(url);
  await Promise.all([
    page.waitForURL(/\/oidc\/callback\?/, { waitUntil: 'load' }),
    page.click(`button[name="sub"][value="${user}"]`),
  ]);
  console.log(`final URL: ${page.url()}`);
  console.log(`page: ${(await page.textContent('body')).replace(/\s+/g, ' ').trim()}`);
} finally {
  await context.close();
  rmSync(dir, { recursive: true, force: true });
}
