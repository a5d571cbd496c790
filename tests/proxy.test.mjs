// Proxy mode (ORIGIN_URL) through the real Worker, with a recording origin on loopback:
// sign-in redirects for browsers, 401 for APIs, identity headers for signed-in requests,
// spoofed X-Gatehouse-* and Gatehouse's cookies stripped, bodies streamed both ways; an origin
// that fails is a 502 in the format asked for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes, createHash } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

let gh;
let idp;
let origin;
const seen = [];
before(async () => {
  // The origin: records what it receives and echoes a digest of the body.
  origin = createServer(async (req, res) => {
    // An origin that fails: the connection dropped, no answer at all.
    if (req.url.startsWith('/drop/')) { seen.push({ method: req.method, url: req.url, dropped: true }); req.socket.destroy(); return; }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, url: req.url, headers: req.headers, length: body.length, sha: createHash('sha256').update(body).digest('hex') });
    res.writeHead(201, { 'content-type': 'application/octet-stream', 'x-origin': 'yes' });
    res.end(Buffer.alloc(300 * 1024, 7)); // bigger than any buffer Gatehouse keeps for itself
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
  gh = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } }, ORIGIN_URL: `http://127.0.0.1:${origin.address().port}` },
    secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: secret },
  });
});
after(async () => { await gh?.stop(); await idp?.close(); origin?.close(); });

test('unauthenticated: browsers are sent to sign in, API calls get 401, nothing reaches the origin', async () => {
  const seenBefore = seen.length;
  const page = await fetch(`${gh.url}/app/page?x=1`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  assert.equal(page.status, 302);
  assert.equal(page.headers.get('location'), '/auth/login?return_to=%2Fapp%2Fpage%3Fx%3D1');
  const api = await fetch(`${gh.url}/api/items`, { method: 'POST', body: '{}' });
  assert.equal(api.status, 401);
  assert.equal((await api.json()).error, 'unauthorized');
  const spoof = await fetch(`${gh.url}/api/items`, { headers: { 'x-gatehouse-user': 'usr_admin' } });
  assert.equal(spoof.status, 401, 'a spoofed identity header is not authentication');
  assert.equal(seen.length, seenBefore);
});

test('signed in: forwarded with identity headers, spoofed ones and our cookies stripped, bodies streamed', async () => {
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login: 'pat' });
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  const body = randomBytes(1024 * 1024); // 1 MiB: far over Gatehouse's own 64 KiB body cap
  const tag = randomBytes(6).toString('hex'); // finds this request among everything the origin saw
  const r = await browser.fetch(`${gh.url}/api/upload?q=${tag}`, {
    method: 'PUT',
    body,
    headers: { origin: gh.url, 'x-gatehouse-user': 'usr_admin', 'X-Gatehouse-Email': 'ceo@corp.example', cookie: `${browser.cookieHeader(gh.url)}; app_pref=dark`, 'content-type': 'application/octet-stream' },
  });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-origin'), 'yes');
  assert.equal((await r.arrayBuffer()).byteLength, 300 * 1024);
  const mine = seen.filter((x) => x.url === `/api/upload?q=${tag}`);
  assert.equal(mine.length, 1, 'forwarded once');
  const got = mine[0];
  assert.equal(got.method, 'PUT');
  assert.equal(got.length, body.length);
  assert.equal(got.sha, createHash('sha256').update(body).digest('hex'), 'body intact');
  assert.equal(got.headers['x-gatehouse-user'], me.id);
  assert.equal(got.headers['x-gatehouse-email'], 'pat@example.test');
  assert.equal(got.headers['x-gatehouse-email-verified'], 'true');
  assert.ok(got.headers['x-gatehouse-jwt'].split('.').length === 3);
  // A cookie-authenticated write from another origin never reaches the origin.
  const seenBefore = seen.length;
  const cross = await browser.fetch(`${gh.url}/api/upload`, { method: 'POST', body: 'x', headers: { origin: 'https://evil.example' } });
  assert.equal(cross.status, 403);
  assert.equal(seen.length, seenBefore);
  // Other cookies of the host (here also the local IdP's) pass; Gatehouse's own never do.
  assert.match(got.headers.cookie, /(^|; )app_pref=dark($|;)/);
  assert.doesNotMatch(got.headers.cookie, /gh_(session|access|txn)=/, "Gatehouse's own cookies are not forwarded");
  // The JWT the origin got verifies at Gatehouse (an origin would use the JWKS).
  const check = await fetch(`${gh.url}/auth/me`, { headers: { authorization: `Bearer ${got.headers['x-gatehouse-jwt']}` } });
  assert.equal((await check.json()).id, me.id);
});

test('an origin that drops the connection: 502 in the format asked for, whether or not a cookie was renewed', async () => {
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login: 'drop' });
  const session = `gh_session=${browser.cookie(gh.url, 'gh_session')}`;
  // The session cookie alone: a new access cookie joins the origin's answer (Gatehouse awaits
  // that answer itself); with a valid access cookie the answer goes back as it is.
  const renewed = await fetch(`${gh.url}/app/renewed`, { headers: { cookie: session } });
  assert.equal(renewed.status, 201);
  assert.ok(renewed.headers.getSetCookie().some((c) => c.startsWith('gh_access=')), 'a renewed access cookie');
  const cases = [
    ['access cookie, browser', { cookie: browser.cookieHeader(gh.url), accept: 'text/html' }, 'text/html'],
    ['access cookie, API', { cookie: browser.cookieHeader(gh.url), accept: 'application/json' }, 'application/json'],
    ['session cookie only, browser', { cookie: session, accept: 'text/html' }, 'text/html'],
    ['session cookie only, API', { cookie: session, accept: 'application/json' }, 'application/json'],
  ];
  for (const [label, headers, type] of cases) {
    const tag = randomBytes(6).toString('hex');
    const r = await fetch(`${gh.url}/drop/${tag}`, { headers, redirect: 'manual' });
    assert.equal(r.status, 502, label);
    assert.ok(r.headers.get('content-type').startsWith(type), `${label}: ${r.headers.get('content-type')}`);
    const text = await r.text();
    if (type === 'application/json') assert.equal(JSON.parse(text).error, 'provider_unavailable', label);
    else assert.match(text, /The origin did not answer/, label);
    assert.equal(seen.filter((x) => x.url === `/drop/${tag}` && x.dropped).length, 1, `${label}: the origin was asked once`);
  }
  // Gatehouse goes on serving: the next proxied request reaches the origin.
  assert.equal((await browser.fetch(`${gh.url}/app/after-drop`)).status, 201);
});
