// CORS from a real browser: a page served from another origin reads a KV secret from Coffer
// with fetch() and X-Vault-Token when `sys/config/cors` allows that origin, and is refused when
// it does not (or when CORS is off).
import { test } from 'node:test';
import { createServer } from 'node:http';
import { startServer, launch, check, checkEqual, checkCount } from './lib.mjs';

const ROOT = 'cors-root';

/** A page on its own origin whose script asks Coffer for secret/data/app. */
function startPageServer(cofferUrl) {
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>other origin</title></head><body>
<p id="out">pending</p>
<script>
async function read(token) {
  try {
    const r = await fetch(${JSON.stringify(cofferUrl)} + '/v1/secret/data/app', { headers: { 'X-Vault-Token': token } });
    const j = await r.json();
    return 'ok ' + r.status + ' ' + (j.data && j.data.data ? j.data.data.colour : JSON.stringify(j));
  } catch (e) {
    return 'blocked ' + e.name;
  }
}
window.readSecret = read;
</script></body></html>`;
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

test('a page on another origin reads a secret only when CORS allows its origin', async () => {
  const coffer = await startServer({ dev: ROOT });
  const other = await startPageServer(coffer.url);
  const origin = `http://127.0.0.1:${other.address().port}`;
  const browser = await launch();
  try {
    checkEqual((await coffer.api('POST', 'secret/data/app', { data: { colour: 'teal' } })).status, 200, 'secret written');
    await browser.page.goto(`${origin}/`);

    // CORS off: the browser gets no Access-Control-Allow-Origin and blocks the answer.
    let got = await browser.page.evaluate((t) => window.readSecret(t), ROOT);
    check(got.startsWith('blocked'), `CORS off must block the read, got ${got}`);

    // Allowed origin: the secret comes through.
    const w = await coffer.api('PUT', 'sys/config/cors', { allowed_origins: [origin] });
    checkEqual(w.status, 204, 'CORS configured');
    got = await browser.page.evaluate((t) => window.readSecret(t), ROOT);
    checkEqual(got, 'ok 200 teal', 'the allowed origin reads the secret');

    // The preflight Chromium sent for X-Vault-Token, seen from outside the browser.
    const pre = await fetch(`${coffer.url}/v1/secret/data/app`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-vault-token' },
    });
    checkEqual(pre.status, 200, 'preflight status (OpenBao answers 200)');
    checkEqual(pre.headers.get('access-control-allow-origin'), origin, 'preflight allow-origin');
    check((pre.headers.get('access-control-allow-headers') || '').includes('X-Vault-Token'), 'X-Vault-Token allowed');
    checkEqual(pre.headers.get('access-control-max-age'), '300', 'preflight max-age');

    // Another origin only: this page is refused (the preflight gets 403).
    checkEqual((await coffer.api('PUT', 'sys/config/cors', { allowed_origins: 'http://elsewhere.example' })).status, 204);
    got = await browser.page.evaluate((t) => window.readSecret(t), ROOT);
    check(got.startsWith('blocked'), `a disallowed origin must be blocked, got ${got}`);
    const denied = await fetch(`${coffer.url}/v1/secret/data/app`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' },
    });
    checkEqual(denied.status, 403, 'preflight from a disallowed origin');
    checkEqual((await denied.json()).errors[0], 'origin not allowed');

    // The wildcard lets it back in; DELETE switches CORS off again.
    checkEqual((await coffer.api('PUT', 'sys/config/cors', { allowed_origins: '*' })).status, 204);
    got = await browser.page.evaluate((t) => window.readSecret(t), ROOT);
    checkEqual(got, 'ok 200 teal', 'the wildcard admits the page');
    checkEqual((await coffer.api('DELETE', 'sys/config/cors')).status, 204);
    got = await browser.page.evaluate((t) => window.readSecret(t), ROOT);
    check(got.startsWith('blocked'), `after DELETE the read is blocked again, got ${got}`);
    console.log(`cors: ${checkCount()} checks passed`);
  } finally {
    await browser.close();
    other.close();
    await coffer.stop();
  }
});
