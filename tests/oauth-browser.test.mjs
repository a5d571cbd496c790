// Gatehouse as an OpenID Provider in a real browser: headless Chromium (playwright-core, the
// system /usr/bin/chromium) goes from a third-party app's sign-in link through Gatehouse's
// login page, the upstream provider (oidc-provider), Gatehouse's consent page ("Allow") and
// back to the app, which redeems the code with `openid-client`. Only a browser enforces what
// this checks on the way: the consent form's CSP (`form-action` must allow the redirect that
// follows the post), the Origin header of the form post, the cookies of the round trip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import * as oidc from 'openid-client';
import { startGatehouse, baseSecrets, freePort } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let idp;
let gh;
let browser;
let app; // the third-party app's callback page
let adminKey;
const arrived = [];

before(async () => {
  app = createServer((req, res) => {
    arrived.push(req.url);
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>App</title><h1>Back at the app</h1>');
  });
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
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
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Local dev provider' } } },
    secrets: { ...secrets, PROVIDER_DEV_SECRET: secret },
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close().catch(() => {});
  await gh?.stop().catch(() => {});
  await idp?.close().catch(() => {});
  await new Promise((r) => app?.close(r));
});

test('a third-party app signs a person in through Gatehouse and its consent page in Chromium', async () => {
  const redirect = `http://127.0.0.1:${app.address().port}/cb`;
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  try {
    const c = await (await fetch(`${gh.url}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Photo Book', type: 'confidential', redirect_uris: [redirect], scopes: ['openid', 'email', 'profile'] }),
    })).json();
    const config = await oidc.discovery(new URL(gh.url), c.client_id, undefined, oidc.ClientSecretBasic(c.client_secret), { execute: [oidc.allowInsecureRequests] });
    oidc.enableNonRepudiationChecks(config);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirect, scope: 'openid email profile', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });

    // 1. The app's sign-in link → Gatehouse's login page (not signed in yet).
    await page.goto(url.toString());
    await page.waitForURL((u) => u.pathname === '/auth/login');
    // 2. The upstream provider's login and consent pages.
    await page.getByRole('link', { name: 'Continue with Local dev provider' }).click();
    await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'));
    await page.locator('input[name="login"]').fill('carol');
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('input[name="password"]').press('Enter');
    await page.getByRole('button', { name: 'Continue' }).click();
    // 3. Back at Gatehouse: its consent page for the third-party app.
    await page.getByRole('heading', { name: 'Allow Photo Book?' }).waitFor();
    const text = await page.locator('main').innerText();
    assert.match(text, /See your email address/);
    assert.match(text, /carol@example\.test/);
    // 4. "Allow" posts the form; the redirect to the app must pass the page's CSP.
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.origin === new URL(redirect).origin && u.pathname === '/cb');
    await page.getByRole('heading', { name: 'Back at the app' }).waitFor();
    const back = new URL(page.url());
    assert.equal(back.searchParams.get('iss'), gh.url);

    // 5. The app redeems the code.
    const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true }, undefined, { execute: [oidc.allowInsecureRequests] });
    assert.equal(tokens.claims().email, 'carol@example.test');
    assert.equal(tokens.claims().aud, c.client_id);

    // 6. Consent is remembered: the next sign-in goes straight back to the app.
    const again = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirect, scope: 'openid email', state: 'again',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    await page.goto(again.toString());
    await page.waitForURL((u) => u.origin === new URL(redirect).origin && u.searchParams.get('state') === 'again');
    assert.ok(new URL(page.url()).searchParams.get('code'));
  } catch (e) {
    e.message += `\n  browser at: ${page.url()}\n  page text: ${(await page.locator('body').innerText().catch(() => '?')).slice(0, 500)}\n  worker log tail:\n${gh.logs().slice(-2000)}`;
    throw e;
  } finally {
    await context.close();
  }
});
