// Gatehouse as an OpenID Provider from another ecosystem: Python's Authlib (PyPI, in the venv
// scripts/bootstrap makes at .pyenv) runs the code flow with PKCE, checks the RS256 ID token
// against the JWKS, calls userinfo and refreshes, against the real Worker. This file plays
// the browser (sign-in at the upstream provider, Gatehouse's consent page) between the two
// halves of tests/python/authlib_client.py.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { ROOT, startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const PYTHON = join(ROOT, '.pyenv', 'bin', 'python');
let gh;
let idp;
let adminKey;

before(async () => {
  await access(PYTHON).catch(() => { throw new Error('.pyenv is missing: run scripts/bootstrap --test'); });
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`], token_endpoint_auth_method: 'client_secret_basic' }],
  });
  const secrets = baseSecrets();
  adminKey = secrets.ADMIN_API_KEY;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  secrets.SIGNING_KEYS = JSON.stringify([...JSON.parse(secrets.SIGNING_KEYS), privateKey.export({ format: 'jwk' })]);
  gh = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } } },
    secrets: { ...secrets, PROVIDER_DEV_SECRET: secret },
  });
});
after(async () => { await gh?.stop(); await idp?.close(); });

test('Authlib: code flow with PKCE, RS256 ID token checked against the JWKS, userinfo, refresh', async () => {
  const redirect = 'http://127.0.0.1:9/authlib-cb';
  const c = await (await fetch(`${gh.url}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Python App', type: 'confidential', redirect_uris: [redirect] }),
  })).json();
  const py = spawn(PYTHON, [join(ROOT, 'tests', 'python', 'authlib_client.py')], {
    env: { ...process.env, ISSUER: gh.url, CLIENT_ID: c.client_id, CLIENT_SECRET: c.client_secret, REDIRECT_URI: redirect, AUTHLIB_INSECURE_TRANSPORT: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  py.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => py.on('exit', r));
  const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
  try {
    const first = await lines.next();
    assert.ok(!first.done, `the script printed its authorization URL: ${stderr}`);
    const { authorization_url: url } = JSON.parse(first.value);
    assert.equal(new URL(url).searchParams.get('code_challenge_method'), 'S256');

    // The browser: not signed in → Gatehouse's login → provider → consent → back to the app.
    const browser = new Client();
    let res = await browser.fetch(url, { headers: { accept: 'text/html' } });
    const returnTo = new URL(res.headers.get('location'), gh.url).searchParams.get('return_to');
    await oidcSignIn(browser, gh.url, { login: 'pyuser', returnTo });
    res = await browser.fetch(new URL(returnTo, gh.url).toString(), { headers: { accept: 'text/html' } });
    assert.equal(res.status, 200, 'the consent page');
    const fields = Object.fromEntries([...(await res.text()).matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replaceAll('&amp;', '&')]));
    res = await browser.fetch(`${gh.url}/oauth/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gh.url },
      body: new URLSearchParams({ ...fields, decision: 'allow' }),
    });
    assert.equal(res.status, 303);
    py.stdin.write(`${res.headers.get('location')}\n`);

    const second = await lines.next();
    assert.ok(!second.done, `the script finished the flow: ${stderr}`);
    const out = JSON.parse(second.value);
    assert.equal(out.alg, 'RS256');
    assert.match(out.sub, /^usr_/);
    assert.equal(out.email, 'pyuser@example.test');
    assert.equal(out.userinfo.sub, out.sub);
    assert.equal(out.userinfo.email, 'pyuser@example.test');
    assert.equal(out.rotated, true, 'the refresh token was rotated');
    assert.equal(out.refreshed_access, true);
    assert.equal(await exited, 0, stderr);
  } finally {
    py.kill();
  }
});
