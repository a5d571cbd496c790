// A real-browser, end-to-end sign-in: headless Chromium (playwright-core, the system
// /usr/bin/chromium, never a downloaded one) walks the newcomer's path through the built Worker
// and a real OpenID Connect provider (oidc-provider's dev login and consent pages):
// home page → "Sign in" → "Continue with Local dev provider" → provider login → consent →
// back home signed in → /auth/me from the page → "Sign out" → home page signed out.
// Unlike the fetch-based tests, this exercises what only a browser enforces: cookie
// attributes (HttpOnly, SameSite=Lax, the plain-http-localhost prefix rule), form posts with an
// Origin header, redirects followed by the browser itself, and the pages' CSP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startGatehouse, baseSecrets, freePort } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const SCREENSHOT = '/tmp/gatehouse-signed-in.png';
const LOGIN = 'alice';

let idp; // the local OpenID Connect provider
let gh; // Gatehouse (wrangler dev running build/)
let browser;

before(async () => {
  // Gatehouse's port must be known before it starts: the provider registers its redirect URI.
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{
      client_id: 'gatehouse',
      client_secret: secret,
      redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
  });
  gh = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Local dev provider' } } },
    secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: secret },
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

// Everything is stopped even when `before` or a test failed half-way; each step on its own so
// one failure does not leave the others running.
after(async () => {
  await browser?.close().catch(() => {});
  await gh?.stop().catch(() => {});
  await idp?.close().catch(() => {});
});

test('a person signs in through the OIDC provider in a real browser, then signs out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  try {
    // 1. The home page, signed out.
    await page.goto(`${gh.url}/`);
    await page.getByText('You are not signed in').waitFor();

    // 2. "Sign in" → the login page listing the configured provider.
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL(`${gh.url}/auth/login`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();

    // 3. The provider button starts the flow: Gatehouse redirects to the provider's
    //    authorization endpoint, which redirects to its dev login page.
    await page.getByRole('link', { name: 'Continue with Local dev provider' }).click();
    await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'));

    // 4. The provider's login page: any login, any password.
    await page.locator('input[name="login"]').fill(LOGIN);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('input[name="password"]').press('Enter');

    // 5. The consent page (same /interaction/ path, so wait for its button, not the URL).
    await page.getByRole('button', { name: 'Continue' }).click();

    // 6. Back through /auth/callback/dev to the home page, signed in as the provider's `name`.
    await page.waitForURL(`${gh.url}/`);
    await page.getByRole('heading', { name: 'Signed in' }).waitFor();
    assert.equal(await page.locator('#who').textContent(), `User ${LOGIN}`);
    assert.equal(await page.locator('#email').textContent(), `${LOGIN}@example.test`);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // 7. The session as the browser holds it: cookies HttpOnly (so invisible to page scripts)
    //    and SameSite=Lax, and /auth/me with the browser's cookies.
    const cookies = await context.cookies(gh.url);
    assert.ok(cookies.length > 0, 'Gatehouse set session cookies');
    for (const c of cookies.filter((c) => c.name.includes('gh_'))) {
      assert.equal(c.httpOnly, true, `${c.name} is HttpOnly`);
      assert.equal(c.sameSite, 'Lax', `${c.name} is SameSite=Lax`);
    }
    assert.ok(cookies.some((c) => c.name.endsWith('gh_session')), `a session cookie among ${cookies.map((c) => c.name)}`);
    // Gatehouse's pages carry `default-src 'none'` (no scripts, so no fetch from them either:
    // `connect-src` falls back to 'none'), so ask through the page's request API instead: it
    // sends the browser context's own cookie jar, exactly what a same-site app page would send.
    const meRes = await page.request.get(`${gh.url}/auth/me`);
    const me = { status: meRes.status(), body: await meRes.json() };
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.name, `User ${LOGIN}`);
    assert.equal(me.body.email, `${LOGIN}@example.test`);
    assert.equal(typeof me.body.id, 'string');
    assert.equal(typeof me.body.session_id, 'string');
    assert.ok(Date.parse(me.body.expires_at) > Date.now(), 'the access token is not expired');

    // 8. "Sign out" posts the form; Gatehouse clears the cookies and redirects home.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are not signed in').waitFor();
    assert.equal(page.url(), `${gh.url}/`);
    const afterRes = await page.request.get(`${gh.url}/auth/me`);
    assert.equal(afterRes.status(), 401, '/auth/me refuses once signed out');
    const left = (await context.cookies(gh.url)).filter((c) => c.name.includes('gh_session') || c.name.includes('gh_access'));
    assert.deepEqual(left.map((c) => c.name), [], 'the session cookies are cleared');
  } catch (e) {
    // Leave a trace of where the browser was, and the Worker's log, to diagnose a failure.
    e.message += `\n  browser at: ${page.url()}\n  page text: ${(await page.locator('body').innerText().catch(() => '?')).slice(0, 500)}\n  worker log tail:\n${gh.logs().slice(-2000)}`;
    throw e;
  } finally {
    await context.close();
  }
});
