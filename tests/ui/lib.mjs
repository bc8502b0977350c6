// Shared helpers of the browser tests: start a real `coffer server`, launch Debian's headless
// Chromium through playwright-core, run axe-core, take screenshots, count checks.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
export const ARTIFACTS = process.env.COFFER_UI_ARTIFACTS || join(here, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

export const COFFER_BIN = process.env.COFFER_BIN
  || join(process.env.CARGO_TARGET_DIR || '/var/tmp/coffer-target', 'debug', 'coffer');

let checks = 0;
/** assert.ok that is counted. */
export function check(cond, msg) {
  checks += 1;
  assert.ok(cond, msg);
}
export function checkEqual(a, b, msg) {
  checks += 1;
  assert.equal(a, b, msg);
}
export function checkCount() {
  return checks;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitHttp(url, child, log) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`coffer exited early:\n${readFileSync(log, 'utf8')}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`coffer did not start:\n${readFileSync(log, 'utf8')}`);
}

/** A real `coffer server` with file storage and ui = true (or -dev with { dev: root token }). */
export async function startServer(opts = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'coffer-ui-'));
  const log = join(dir, 'server.log');
  let args;
  if (opts.dev) {
    args = ['server', '-dev', `-dev-root-token-id=${opts.dev}`, `-dev-listen-address=127.0.0.1:${port}`, '-dev-no-store-token'];
  } else {
    const cfg = join(dir, 'coffer.hcl');
    writeFileSync(cfg, [
      `storage "file" {\n  path = "${join(dir, 'data')}"\n}`,
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}`,
      `api_addr = "http://127.0.0.1:${port}"`,
      'disable_mlock = true',
      `ui = ${opts.ui === false ? 'false' : 'true'}`,
      '',
    ].join('\n'));
    args = ['server', `-config=${cfg}`];
  }
  const { openSync } = await import('node:fs');
  const fd = openSync(log, 'a');
  const child = spawn(COFFER_BIN, args, { stdio: ['ignore', fd, fd] });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/v1/sys/seal-status`, child, log);
  if (opts.dev) {
    // Dev setup (init, unseal, secret/) completes just after the listener is up.
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${url}/v1/sys/mounts/secret`, { headers: { 'X-Vault-Token': opts.dev } });
      if (r.status === 200) break;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  return {
    url,
    dir,
    log,
    async api(method, path, body, token) {
      const r = await fetch(`${url}/v1/${path}`, {
        method,
        headers: { 'X-Vault-Token': token || opts.dev || '', 'Content-Type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : null };
    },
    async stop() {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Debian Chromium, a fresh profile; a page that records console output and errors. */
export async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'coffer-ui-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  const consoleLines = [];
  const pageErrors = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  return {
    context,
    page,
    consoleLines,
    pageErrors,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const axeFindings = [];

/** Runs axe-core on the page (evaluated through the DevTools protocol, so the CSP stays strict). */
export async function axe(page, screen) {
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  for (const v of res) axeFindings.push({ screen, ...v });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  checks += 1;
  assert.deepEqual(bad, [], `axe: serious or critical violations on ${screen}`);
  return res;
}

/** Writes every axe finding (any impact) of this run to artifacts/axe-<suite>.json; returns a summary. */
export function axeReport(suite) {
  writeFileSync(join(ARTIFACTS, `axe-${suite}.json`), JSON.stringify(axeFindings, null, 2));
  const by = {};
  for (const f of axeFindings) by[f.impact] = (by[f.impact] || 0) + 1;
  return `axe findings by impact: ${JSON.stringify(by)}`;
}

export async function shot(page, name) {
  await page.evaluate(() => document.getElementById('toast').classList.remove('show'));
  await page.waitForTimeout(250);
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Waits until the main heading reads `text`. */
export async function heading(page, text) {
  await page.locator('main h1').filter({ hasText: text }).first().waitFor({ timeout: 10000 });
}
