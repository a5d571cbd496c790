// Passkeys end to end: headless Chromium (playwright-core, the system /usr/bin/chromium) with
// a Chrome DevTools Protocol virtual authenticator (WebAuthn.addVirtualAuthenticator: CTAP2,
// resident keys, user verification) against the built Worker, its real D1 and KV, and a real
// OpenID Connect provider for the first sign-in. Browsers refuse an IP address as RP ID, so
// Gatehouse runs with PUBLIC_URL = http://localhost:PORT and the browser uses that origin.
//
// The walk: sign in with the OIDC provider → add a passkey on the account page → sign in with
// it from a fresh browser → rename → delete; and the refusals: a replayed assertion, a
// tampered signature, a challenge from another browser, a client-data origin that is not
// Gatehouse's, a cross-origin request, a credential registered already (409), a bearer token
// alone, deleting the last sign-in method (409), a sign count that goes backwards (an event).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { startGatehouse, baseSecrets, freePort } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const SHOTS = '/work/notes/shots';

let idp; let gh; let browser; let base; let secrets;

before(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  const clientSecret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{
      client_id: 'gatehouse', client_secret: clientSecret,
      redirect_uris: [`${base}/auth/callback/dev`], token_endpoint_auth_method: 'client_secret_basic',
    }],
  });
  secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: clientSecret };
  gh = await startGatehouse({
    port,
    vars: {
      PUBLIC_URL: base,
      PROVIDERS: {
        dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Local dev provider' },
        passkey: { kind: 'passkey', display_name: 'Passkey' },
      },
    },
    secrets,
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  await mkdir(SHOTS, { recursive: true }).catch(() => {});
});

after(async () => {
  await browser?.close().catch(() => {});
  await gh?.stop().catch(() => {});
  await idp?.close().catch(() => {});
});

/** A fresh browser context and page with a virtual authenticator (its own, empty). */
async function freshBrowser() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId };
}

/** Signs in through the OIDC provider's dev pages as `login`, ending on the home page. */
async function oidcSignIn(page, login) {
  await page.goto(`${base}/auth/login?provider=dev`);
  await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('input[name="password"]').press('Enter');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole('heading', { name: 'Signed in' }).waitFor();
}

/** `fetch` from inside the page (its cookies, its Origin): { status, body }. */
function pageFetch(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const r = await fetch(path, {
      method, headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }, { method, path, body });
}

/** A sign-in assertion made in `page` for the challenge of that page's browser. */
function assertion(page) {
  return page.evaluate(async () => {
    const o = await (await fetch('/auth/passkeys/login/options', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
    const c = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o) });
    return c.toJSON();
  });
}

/** A registration response made in `page` (signed in) for its browser's challenge. */
function registration(page) {
  return page.evaluate(async () => {
    const r = await fetch('/auth/passkeys/register/options', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const o = await r.json();
    if (!r.ok) throw new Error(JSON.stringify(o));
    const c = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o) });
    return c.toJSON();
  });
}

const b64 = (s) => Buffer.from(s, 'base64url');
const flipLast = (s) => { const b = b64(s); b[b.length - 1] ^= 1; return b.toString('base64url'); };
const withResponse = (a, change) => ({ ...a, response: { ...a.response, ...change } });

// Shared by the steps below (they run in order).
const alice = {};

test('a signed-in person adds a passkey on the account page', async () => {
  alice.b = await freshBrowser();
  const { page } = alice.b;
  await oidcSignIn(page, 'alice');
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await page.getByText('No passkeys yet.').waitFor();
  // The page runs exactly Gatehouse's script, by nonce; nothing inline.
  const home = await page.request.get(`${base}/`);
  const csp = home.headers()['content-security-policy'];
  const nonce = csp.match(/script-src 'nonce-([^']+)'/)?.[1];
  assert.ok(nonce, csp);
  assert.match(csp, /default-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline'[^;]*script|script-src[^;]*(self|unsafe)/);
  assert.ok((await home.text()).includes(`<script src="/auth/passkeys.js" nonce="${nonce}" defer></script>`));

  await page.getByLabel('Name of a new passkey').fill('Laptop');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('Passkey added.').waitFor();
  assert.equal(await page.getByLabel('Passkey name').inputValue(), 'Laptop');
  await page.screenshot({ path: `${SHOTS}/passkey-1-account-added.png`, fullPage: true });

  const list = await pageFetch(page, 'GET', '/auth/passkeys');
  assert.equal(list.status, 200);
  assert.equal(list.body.passkeys.length, 1);
  const [pk] = list.body.passkeys;
  assert.equal(pk.name, 'Laptop');
  assert.equal(pk.algorithm, 'ES256');
  alice.passkeyId = pk.id;
  // An identity of its user, among the others.
  const ids = await pageFetch(page, 'GET', '/auth/identities');
  assert.deepEqual(ids.body.identities.map((i) => i.issuer).sort(), [idp.issuer, 'webauthn:localhost'].sort());
  assert.equal(ids.body.identities.find((i) => i.issuer === 'webauthn:localhost').sub, pk.id);
  const rows = await gh.d1('SELECT user_id, alg, sign_count, backup_eligible, backup_state, public_key FROM passkeys WHERE credential_id = ?1', [pk.id]);
  assert.equal(rows.length, 1);
  assert.equal(JSON.parse(rows[0].public_key).kty, 'EC');
  alice.userId = rows[0].user_id;
  const creds = await alice.b.cdp.send('WebAuthn.getCredentials', { authenticatorId: alice.b.authenticatorId });
  alice.credential = creds.credentials[0];
  assert.equal(Buffer.from(alice.credential.credentialId, 'base64').toString('base64url'), pk.id);
});

/**
 * A fresh browser holding a copy of alice's passkey (as a synced passkey would be). The
 * virtual authenticator answers the login page's autofill request (conditional mediation) at
 * once, as a person picking the passkey from the autofill list would; unless `autofill`, the
 * browser says it offers none, so that the page waits for its button.
 */
async function browserWithAlicesPasskey({ signCount = alice.credential.signCount, autofill = false } = {}) {
  const b = await freshBrowser();
  if (!autofill) {
    await b.page.addInitScript(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });
  }
  await b.cdp.send('WebAuthn.addCredential', { authenticatorId: b.authenticatorId, credential: { ...alice.credential, signCount } });
  return b;
}

test('anyone signs in with the passkey from the login page of a fresh browser', async () => {
  const { context, page } = await browserWithAlicesPasskey();
  try {
    await page.goto(`${base}/auth/login?return_to=%2F`);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
    const login = await page.request.get(`${base}/auth/login`);
    assert.match(login.headers()['content-security-policy'], /script-src 'nonce-[^']+'; connect-src 'self'/);
    await page.screenshot({ path: `${SHOTS}/passkey-2-login-page.png`, fullPage: true });
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(`${base}/`);
    await page.getByRole('heading', { name: 'Signed in' }).waitFor();
    assert.equal(await page.locator('#who').textContent(), 'User alice');
    await page.screenshot({ path: `${SHOTS}/passkey-3-signed-in-with-passkey.png`, fullPage: true });
    const me = await pageFetch(page, 'GET', '/auth/me');
    assert.equal(me.body.id, alice.userId);
    const sessions = await pageFetch(page, 'GET', '/auth/sessions');
    assert.ok(sessions.body.sessions.some((s) => s.current && s.provider === 'passkey'));
  } finally {
    await context.close();
  }
});

test('where the browser offers passkey autofill, the login page signs in through it', async () => {
  const { context, page } = await browserWithAlicesPasskey({ autofill: true });
  try {
    const options = page.waitForRequest(`${base}/auth/passkeys/login/options`);
    await page.goto(`${base}/auth/login?return_to=%2F`);
    await options; // asked for by the page on load, with no click
    await page.waitForURL(`${base}/`);
    assert.equal(await page.locator('#who').textContent(), 'User alice');
  } finally {
    await context.close();
  }
});

test('a replayed assertion is refused: the challenge is spent', async () => {
  const { context, page } = await browserWithAlicesPasskey();
  try {
    await page.goto(`${base}/healthz`);
    const a = await assertion(page);
    const first = await pageFetch(page, 'POST', '/auth/passkeys/login', a);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // The same assertion and the same challenge cookie, sent again (the browser dropped the
    // cookie after use; an attacker who copied both would not).
    const cookie = `gh_pk=${(await context.cookies(base)).find((c) => c.name === 'gh_pk')?.value ?? ''}`;
    assert.equal(cookie, 'gh_pk=', 'the challenge cookie is cleared after use');
    const captured = await captureLogin(page);
    const replay = await fetch(`${base}/auth/passkeys/login`, {
      method: 'POST', body: JSON.stringify(captured.body),
      headers: { 'content-type': 'application/json', accept: 'application/json', origin: base, cookie: captured.cookie },
    });
    assert.equal(replay.status, 400);
    assert.match((await replay.json()).message, /challenge already used/);
  } finally {
    await context.close();
  }
});

/** Signs in through the page's button while recording the login request's body and cookie. */
async function captureLogin(page) {
  await page.goto(`${base}/auth/login`);
  const sent = page.waitForRequest((r) => r.url().startsWith(`${base}/auth/passkeys/login`) && !r.url().includes('options'));
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  const req = await sent;
  const headers = await req.allHeaders();
  await page.waitForURL(`${base}/`);
  return { body: JSON.parse(req.postData()), cookie: headers.cookie.split('; ').filter((c) => c.startsWith('gh_pk=')).join('; ') };
}

test('a tampered signature, a foreign origin in the client data and a wrong type are refused', async () => {
  const { context, page } = await browserWithAlicesPasskey();
  try {
    await page.goto(`${base}/healthz`);
    const a = await assertion(page);
    const tampered = await pageFetch(page, 'POST', '/auth/passkeys/login', withResponse(a, { signature: flipLast(a.response.signature) }));
    assert.equal(tampered.status, 400);
    assert.match(tampered.body.message, /bad signature/);
    const cd = JSON.parse(b64(a.response.clientDataJSON));
    const foreign = Buffer.from(JSON.stringify({ ...cd, origin: 'http://localhost:1' })).toString('base64url');
    const wrongOrigin = await pageFetch(page, 'POST', '/auth/passkeys/login', withResponse(a, { clientDataJSON: foreign }));
    assert.equal(wrongOrigin.status, 400);
    assert.match(wrongOrigin.body.message, /wrong origin/);
    const created = Buffer.from(JSON.stringify({ ...cd, type: 'webauthn.create' })).toString('base64url');
    const wrongType = await pageFetch(page, 'POST', '/auth/passkeys/login', withResponse(a, { clientDataJSON: created }));
    assert.match(wrongType.body.message, /wrong ceremony type/);
    // None of them spent the challenge: the genuine assertion still signs in.
    const genuine = await pageFetch(page, 'POST', '/auth/passkeys/login', a);
    assert.equal(genuine.status, 200, JSON.stringify(genuine.body));
    // A request from another site is refused before anything is read.
    const crossSite = await fetch(`${base}/auth/passkeys/login`, {
      method: 'POST', body: JSON.stringify(a),
      headers: { 'content-type': 'application/json', accept: 'application/json', origin: 'http://evil.example' },
    });
    assert.equal(crossSite.status, 403);
  } finally {
    await context.close();
  }
});

test('an assertion for the challenge of another browser is refused', async () => {
  const one = await browserWithAlicesPasskey();
  const two = await freshBrowser();
  try {
    await one.page.goto(`${base}/healthz`);
    await two.page.goto(`${base}/healthz`);
    const a = await assertion(one.page);
    // The second browser has a challenge of its own (and a browser with none is refused too).
    await two.page.evaluate(() => fetch('/auth/passkeys/login/options', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
    const elsewhere = await pageFetch(two.page, 'POST', '/auth/passkeys/login', a);
    assert.equal(elsewhere.status, 400);
    assert.match(elsewhere.body.message, /challenge is not this browser's/);
    await two.context.clearCookies();
    const none = await pageFetch(two.page, 'POST', '/auth/passkeys/login', a);
    assert.match(none.body.message, /challenge missing in this browser/);
  } finally {
    await one.context.close();
    await two.context.close();
  }
});

test('a credential registered already is refused with 409, even for another account', async () => {
  const bob = await freshBrowser();
  try {
    await oidcSignIn(bob.page, 'bob');
    const r = await registration(bob.page);
    // Bob's authenticator made a new credential; point the response at alice's instead.
    // (Nothing signs a registration with attestation "none": only the server's check stops this.)
    const mine = b64(r.rawId); const hers = b64(alice.passkeyId);
    assert.equal(mine.length, hers.length, 'the virtual authenticator makes ids of one length');
    const att = b64(r.response.attestationObject);
    const at = att.indexOf(mine);
    assert.ok(at > 0);
    hers.copy(att, at);
    const forged = { ...withResponse(r, { attestationObject: att.toString('base64url') }), id: alice.passkeyId, rawId: alice.passkeyId };
    const res = await pageFetch(bob.page, 'POST', '/auth/passkeys/register', forged);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    const owner = await gh.d1('SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2', ['webauthn:localhost', alice.passkeyId]);
    assert.deepEqual(owner.map((o) => o.user_id), [alice.userId], 'still alice\'s');
    const bobs = await pageFetch(bob.page, 'GET', '/auth/passkeys');
    assert.deepEqual(bobs.body.passkeys, []);
  } finally {
    await bob.context.close();
  }
});

test('an EdDSA passkey registers and signs in (WebCrypto Ed25519 in the Worker)', async () => {
  const carol = await freshBrowser();
  try {
    await carol.page.addInitScript(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });
    await oidcSignIn(carol.page, 'carol');
    // Offer only EdDSA, as a site preferring it would (Gatehouse lists ES256 first).
    await carol.page.route(`${base}/auth/passkeys/register/options`, async (route) => {
      const response = await route.fetch();
      const json = { ...(await response.json()), pubKeyCredParams: [{ type: 'public-key', alg: -8 }] };
      await route.fulfill({ response, json });
    });
    await carol.page.getByRole('button', { name: 'Add a passkey' }).click();
    await carol.page.getByText('Passkey added.').waitFor();
    const [pk] = (await pageFetch(carol.page, 'GET', '/auth/passkeys')).body.passkeys;
    assert.equal(pk.algorithm, 'EdDSA');
    await carol.page.getByRole('button', { name: 'Sign out' }).click();
    await carol.page.getByText('You are not signed in').waitFor();
    await carol.page.goto(`${base}/auth/login`);
    await carol.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await carol.page.waitForURL(`${base}/`);
    assert.equal(await carol.page.locator('#who').textContent(), 'User carol');
  } finally {
    await carol.context.close();
  }
});

test('an access token alone cannot list, add, rename or delete passkeys', async () => {
  const { page } = alice.b;
  const token = (await pageFetch(page, 'POST', '/auth/token')).body.access_token;
  assert.ok(token);
  const auth = { authorization: `Bearer ${token}`, accept: 'application/json', 'content-type': 'application/json' };
  for (const [method, path] of [['GET', '/auth/passkeys'], ['POST', '/auth/passkeys/register/options'], ['POST', '/auth/passkeys/register'], ['PATCH', `/auth/passkeys/${alice.passkeyId}`], ['DELETE', `/auth/passkeys/${alice.passkeyId}`]]) {
    const res = await fetch(`${base}${path}`, { method, headers: auth, body: method === 'GET' || method === 'DELETE' ? undefined : '{"name":"x"}' });
    assert.equal(res.status, 401, `${method} ${path}`);
  }
  // The token itself is fine for what it is for.
  assert.equal((await fetch(`${base}/auth/me`, { headers: auth })).status, 200);
});

test('a sign count that goes backwards is recorded as an event, and the sign-in stands', async () => {
  const { context, page } = await browserWithAlicesPasskey({ signCount: 0 });
  try {
    await page.goto(`${base}/healthz`);
    const res = await pageFetch(page, 'POST', '/auth/passkeys/login', await assertion(page));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const events = await fetch(`${base}/admin/users/${alice.userId}/events?limit=50`, { headers: { authorization: `Bearer ${secrets.ADMIN_API_KEY}` } });
    const kinds = (await events.json()).events.map((e) => e.type);
    assert.ok(kinds.includes('passkey_counter_regressed'), kinds.join(','));
  } finally {
    await context.close();
  }
});

test('rename and delete from the account page; the last sign-in method stays', async () => {
  const { page } = alice.b;
  await page.goto(`${base}/`);
  const name = page.getByLabel('Passkey name');
  await name.fill('Work laptop');
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.waitForFunction(() => document.querySelector('#pk-list input')?.value === 'Work laptop');
  assert.equal((await pageFetch(page, 'GET', '/auth/passkeys')).body.passkeys[0].name, 'Work laptop');
  const badName = await pageFetch(page, 'PATCH', `/auth/passkeys/${alice.passkeyId}`, { name: 'x'.repeat(65) });
  assert.equal(badName.status, 400);
  await page.screenshot({ path: `${SHOTS}/passkey-4-renamed.png`, fullPage: true });

  // Unlink the OIDC identity: the passkey is now alice's only sign-in method.
  const ids = (await pageFetch(page, 'GET', '/auth/identities')).body.identities;
  const oidc = ids.find((i) => i.issuer === idp.issuer);
  const unlink = await pageFetch(page, 'DELETE', `/auth/identities?issuer=${encodeURIComponent(oidc.issuer)}&sub=${encodeURIComponent(oidc.sub)}`);
  assert.equal(unlink.status, 204);
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByText(/last sign-in method/).waitFor();
  await page.screenshot({ path: `${SHOTS}/passkey-5-last-method-kept.png`, fullPage: true });
  assert.equal((await pageFetch(page, 'GET', '/auth/passkeys')).body.passkeys.length, 1);

  // With another method linked again, deleting works and takes the stored key with it.
  // (Linking starts from Gatehouse's own page: a same-origin navigation.)
  await page.evaluate(() => location.assign('/auth/login?provider=dev&link=1'));
  await page.waitForURL((u) => u.href === `${base}/` || u.pathname.startsWith('/interaction/'));
  if (page.url() !== `${base}/`) {
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${base}/`);
  }
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No passkeys yet.').waitFor();
  assert.deepEqual(await gh.d1('SELECT credential_id FROM passkeys WHERE credential_id = ?1', [alice.passkeyId]), []);
  await page.screenshot({ path: `${SHOTS}/passkey-6-deleted.png`, fullPage: true });

  // The deleted passkey signs nobody in any more.
  const { context, page: fresh } = await browserWithAlicesPasskey();
  try {
    await fresh.goto(`${base}/healthz`);
    const res = await pageFetch(fresh, 'POST', '/auth/passkeys/login', await assertion(fresh));
    assert.equal(res.status, 400);
    assert.match(res.body.message, /not registered here/);
  } finally {
    await context.close();
  }
});

test('end: close alice\'s browser', async () => {
  await alice.b?.context.close();
});
