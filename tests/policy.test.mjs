// The access policy (README "Access policy and roles") through the real Worker: real
// sign-ins at the local OpenID Connect provider (whose accounts here carry any email and
// email_verified), invitations through the admin API, roles, and proxy mode in front of a
// local origin that records what it receives — including a corpus of path tricks sent raw.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { decode } from './support/jwt.mjs';

const POLICY = {
  sign_up: 'invite',
  allowed_email_domains: ['corp.example'],
  allowed_emails: ['contractor@gmail.example'],
  roles: [{ role: 'staff', email_domains: ['corp.example'] }],
  routes: [
    { path: '/private/*', roles: ['admin'] },
    { path: '/public/*', public: true },
    { path: '/api/*', methods: ['POST', 'PUT', 'PATCH', 'DELETE'], roles: ['editor'] },
  ],
};

// Account id → claims at the provider (default: `${id}@example.test`, verified).
const accounts = new Map();
const account = (id, email, verified = true) => accounts.set(id, { email, email_verified: verified });

let gh;
let idp;
let origin;
let secrets;
let secret;
const seen = [];
const ports = {};

before(async () => {
  origin = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`origin saw ${req.url}`);
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  ports.main = await freePort();
  ports.restart = await freePort();
  secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [ports.main, ports.restart].map((p) => `http://127.0.0.1:${p}/auth/callback/dev`) }],
    claimsFor: (id) => accounts.get(id),
  });
  secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  gh = await startGatehouse({ port: ports.main, vars: vars(POLICY), secrets });
});
after(async () => { await gh?.stop(); await idp?.close(); origin?.close(); });

function vars(policy) {
  const v = { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Corp login' } }, ORIGIN_URL: `http://127.0.0.1:${origin.address().port}` };
  if (policy) v.POLICY = policy;
  return v;
}

async function admin(g, method, path, body) {
  const res = await fetch(`${g.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${secrets.ADMIN_API_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const usersWithIdentity = async (g, sub) => g.d1('SELECT user_id FROM identities WHERE sub = ?1', [sub]);
const deniedEvents = async (g) => (await g.d1("SELECT user_id, detail FROM events WHERE type = 'sign_in_denied' ORDER BY id")).map((e) => ({ ...e, detail: JSON.parse(e.detail) }));

/** Signs in as `login` in a fresh browser; returns { browser, res } (res: the callback's answer). */
async function signIn(g, login, options = {}) {
  const browser = new Client();
  const res = await oidcSignIn(browser, g.url, { login, ...options });
  return { browser, res };
}

/** The callback's answer as JSON (an API client), without following the redirect. */
async function signInJson(g, login, options = {}) {
  const browser = new Client();
  const callback = await oidcSignIn(browser, g.url, { login, stopAtCallback: true, ...options });
  const res = await browser.fetch(callback, { headers: { accept: 'application/json' } });
  return { browser, res };
}

/** Opens an invitation's URL and returns the sign-in link its page offers. */
async function invitationLink(g, url, browser = new Client()) {
  const page = await browser.fetch(url, { headers: { accept: 'text/html' } });
  const html = await page.text();
  assert.equal(page.status, 200, html);
  const href = html.match(/href="(\/auth\/login\?(?:&amp;)?provider=dev[^"]*)"/)?.[1]?.replaceAll('&amp;', '&');
  assert.ok(href, `no provider link on the invitation page: ${html}`);
  return { html, start: new URL(href, g.url).toString(), browser };
}

async function invite(g, body = {}, path = '/admin/invitations') {
  const r = await admin(g, 'POST', path, body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body).sort(), ['expires_at', 'id', 'url']);
  return r.body;
}

/** Signs `login` up through a fresh invitation (roles, email as given); returns the browser. */
async function signUp(g, login, invitation = {}) {
  const inv = await invite(g, invitation);
  const { start, browser } = await invitationLink(g, inv.url);
  const res = await oidcSignIn(browser, g.url, { login, startUrl: start });
  assert.equal(res.status, 302, await res.text());
  return { browser, inv };
}

test('the login page says who may sign in', async () => {
  const r = await fetch(`${gh.url}/auth/login`, { headers: { accept: 'text/html' } });
  const html = await r.text();
  assert.match(html, /Sign in with your corp\.example account\. New accounts need an invitation\./);
});

test('invite-only: a new identity without an invitation is refused, and nothing is written', async () => {
  account('stranger', 'stranger@corp.example');
  const before = (await gh.d1('SELECT COUNT(*) AS n FROM users'))[0].n;
  const { browser, res } = await signInJson(gh, 'stranger');
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.equal(body.error, 'access_denied');
  assert.match(body.message, /New accounts need an invitation/);
  assert.equal(browser.cookie(gh.url, 'gh_session'), undefined, 'no session');
  assert.equal((await gh.d1('SELECT COUNT(*) AS n FROM users'))[0].n, before, 'no user');
  assert.deepEqual(await usersWithIdentity(gh, 'stranger'), [], 'no identity');
  assert.ok((await deniedEvents(gh)).some((e) => e.user_id === null && /invitation/.test(e.detail.reason)), 'a sign_in_denied event');
  // A browser gets the same as a readable page.
  const page = await signIn(gh, 'stranger');
  assert.equal(page.res.status, 403);
  const html = await page.res.text();
  assert.match(html, /Access denied/);
  assert.match(html, /New accounts need an invitation/);
});

test('an invitation makes the user, with its roles and the rule roles, once', async () => {
  account('newbie', 'Newbie@Corp.example');
  const inv = await invite(gh, { email: 'newbie@corp.example', roles: ['editor'], return_to: '/welcome' });
  assert.match(inv.url, new RegExp(`^${gh.url}/auth/login\\?invitation=`));
  const expires = Date.parse(inv.expires_at) - Date.now();
  assert.ok(Math.abs(expires - 7 * 24 * 3600 * 1000) < 120_000, inv.expires_at);
  const { html, start, browser } = await invitationLink(gh, inv.url);
  assert.match(html, /You are invited to sign in as newbie@corp\.example/);
  const res = await oidcSignIn(browser, gh.url, { login: 'newbie', startUrl: start });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), '/welcome', "the invitation's return_to");
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  assert.deepEqual(me.roles, ['editor', 'staff']);
  assert.deepEqual(decode(browser.cookie(gh.url, 'gh_access')).claims.roles, ['editor', 'staff']);
  const user = await admin(gh, 'GET', `/admin/users/${me.id}`);
  assert.deepEqual(user.body.roles, ['editor'], 'stored: the invitation roles; rule roles are added to tokens');
  const listed = (await admin(gh, 'GET', '/admin/invitations')).body.invitations.find((i) => i.id === inv.id);
  assert.equal(listed.used_by, me.id);
  assert.ok(listed.used_at);
  // Used: its page and a sign-in that carries it are refused, and no second user appears.
  const again = await new Client().fetch(inv.url, { headers: { accept: 'application/json' } });
  assert.equal(again.status, 403);
  assert.equal((await again.json()).error, 'access_denied');
  account('latecomer', 'latecomer@corp.example');
  const replay = await signInJson(gh, 'latecomer', { startUrl: start });
  assert.equal(replay.res.status, 403);
  assert.deepEqual(await usersWithIdentity(gh, 'latecomer'), []);
});

test('concurrent redemptions of one invitation: exactly one succeeds', async () => {
  const inv = await invite(gh, { roles: ['editor'] });
  const people = ['racer-a', 'racer-b', 'racer-c'];
  const callbacks = [];
  for (const login of people) {
    account(login, `${login}@corp.example`);
    const { start, browser } = await invitationLink(gh, inv.url);
    callbacks.push({ browser, url: await oidcSignIn(browser, gh.url, { login, startUrl: start, stopAtCallback: true }) });
  }
  const answers = await Promise.all(callbacks.map(({ browser, url }) => browser.fetch(url, { headers: { accept: 'application/json' } })));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [302, 403, 403], 'one success');
  const made = (await Promise.all(people.map((p) => usersWithIdentity(gh, p)))).flat();
  assert.equal(made.length, 1, 'one user');
});

test('the spent-set alone refuses a second acceptance that read the invitation before it was marked used', async () => {
  const inv = await invite(gh);
  account('first-in', 'first-in@corp.example');
  account('second-in', 'second-in@corp.example');
  // Both browsers start while the invitation is unused.
  const a = await invitationLink(gh, inv.url);
  const b = await invitationLink(gh, inv.url);
  const callbackA = await oidcSignIn(a.browser, gh.url, { login: 'first-in', startUrl: a.start, stopAtCallback: true });
  const callbackB = await oidcSignIn(b.browser, gh.url, { login: 'second-in', startUrl: b.start, stopAtCallback: true });
  assert.equal((await a.browser.fetch(callbackA)).status, 302);
  // The race window, made certain: B's read finds the invitation not yet marked used.
  await gh.d1('UPDATE invitations SET used_at = NULL, used_by = NULL WHERE id = ?1', [inv.id]);
  const r = await b.browser.fetch(callbackB, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 403);
  assert.match((await r.json()).message, /already used/);
  assert.deepEqual(await usersWithIdentity(gh, 'second-in'), []);
});

test('an invitation naming an email refuses another (or an unverified) address and stays usable', async () => {
  account('wrongperson', 'wrong@corp.example');
  account('unverified-right', 'right@corp.example', false);
  const inv = await invite(gh, { email: 'right@corp.example' });
  for (const login of ['wrongperson', 'unverified-right']) {
    const { start } = await invitationLink(gh, inv.url);
    const { res } = await signInJson(gh, login, { startUrl: start });
    assert.equal(res.status, 403, login);
    const body = await res.json();
    assert.equal(body.error, 'access_denied');
    assert.match(body.message, /This invitation is for right@corp\.example/);
    assert.deepEqual(await usersWithIdentity(gh, login), []);
  }
  const listed = (await admin(gh, 'GET', '/admin/invitations')).body.invitations.find((i) => i.id === inv.id);
  assert.equal(listed.used_at, null, 'not used up by the refusals');
  account('rightperson', 'right@corp.example');
  const { start, browser } = await invitationLink(gh, inv.url);
  assert.equal((await oidcSignIn(browser, gh.url, { login: 'rightperson', startUrl: start })).status, 302);
});

test('domain rules trust only a verified email; allowed_emails admits an address; an email that left the domain is refused next time', async () => {
  account('unverified', 'unverified@corp.example', false);
  const inv = await invite(gh);
  let { start } = await invitationLink(gh, inv.url);
  const refused = await signInJson(gh, 'unverified', { startUrl: start });
  assert.equal(refused.res.status, 403);
  assert.match((await refused.res.json()).message, /did not verify an email address/);
  assert.deepEqual(await usersWithIdentity(gh, 'unverified'), []);

  account('outsider', 'outsider@other.example');
  ({ start } = await invitationLink(gh, inv.url));
  const outsider = await signInJson(gh, 'outsider', { startUrl: start });
  assert.equal(outsider.res.status, 403);
  assert.match((await outsider.res.json()).message, /Only corp\.example accounts may sign in here/);

  account('contractor', 'contractor@gmail.example');
  const { browser } = await signUp(gh, 'contractor');
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  assert.deepEqual(me.roles, [], 'no staff role off the domain');

  account('leaver', 'leaver@corp.example');
  await signUp(gh, 'leaver');
  account('leaver', 'leaver@elsewhere.example');
  const { browser: b2, res } = await signInJson(gh, 'leaver');
  assert.equal(res.status, 403, 'a returning user whose email left the domain');
  assert.equal(b2.cookie(gh.url, 'gh_session'), undefined);
  const [leaverId] = await usersWithIdentity(gh, 'leaver');
  assert.ok((await deniedEvents(gh)).some((e) => /leaver@elsewhere\.example/.test(e.detail.reason)));
  const stored = await admin(gh, 'GET', `/admin/users/${leaverId.user_id}`);
  assert.equal(stored.body.email, 'leaver@corp.example', 'the refused sign-in changed nothing');
});

test('roles: PATCH is validated; a granted role opens a route after renewal', async () => {
  account('riley', 'riley@corp.example');
  const { browser } = await signUp(gh, 'riley');
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  for (const roles of [['Admin'], ['a b'], [''], ['x'.repeat(33)], 'admin', Array.from({ length: 21 }, (_, i) => `r${i}`)]) {
    const r = await admin(gh, 'PATCH', `/admin/users/${me.id}`, { roles });
    assert.equal(r.status, 400, JSON.stringify(roles));
  }
  assert.deepEqual((await admin(gh, 'GET', `/admin/users/${me.id}`)).body.roles, [], 'refusals change nothing');

  const page = (b) => b.fetch(`${gh.url}/private/reports`, { headers: { accept: 'text/html' } });
  const denied = await page(browser);
  assert.equal(denied.status, 403);
  assert.match(await denied.text(), /needs the role admin/);
  const r = await admin(gh, 'PATCH', `/admin/users/${me.id}`, { roles: ['admin', 'admin'] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.roles, ['admin']);
  assert.equal((await page(browser)).status, 403, 'the current token still says what it said');
  // The access token expires (here: the browser drops it); the renewal re-reads the roles.
  browser.jar.get('127.0.0.1').delete('gh_access');
  const n = seen.length;
  const opened = await page(browser);
  assert.equal(opened.status, 200);
  assert.equal(seen.length, n + 1);
  assert.equal(seen.at(-1).url, '/private/reports');
  assert.equal(seen.at(-1).headers['x-gatehouse-roles'], 'admin,staff');
  // Taking it away closes the route again at the next renewal.
  await admin(gh, 'PATCH', `/admin/users/${me.id}`, { roles: [] });
  browser.jar.get('127.0.0.1').delete('gh_access');
  assert.equal((await page(browser)).status, 403);
});

test('proxy routes: public, signed in, roles per method; deactivation reaches the proxy at renewal', async () => {
  const anon = new Client();
  let n = seen.length;
  const pub = await anon.fetch(`${gh.url}/public/app.css`, { headers: { 'x-gatehouse-user': 'usr_admin', 'X_Gatehouse_Roles': 'admin' } });
  assert.equal(pub.status, 200);
  assert.equal(seen.length, n + 1);
  assert.equal(seen.at(-1).headers['x-gatehouse-user'], undefined, 'spoofed headers stripped on public routes');
  assert.equal(seen.at(-1).headers['x-gatehouse-roles'], undefined);
  assert.equal((await anon.fetch(`${gh.url}/app`, { headers: { accept: 'text/html' } })).status, 302);
  const api = await anon.fetch(`${gh.url}/api/items`);
  assert.equal(api.status, 401);
  assert.equal((await api.json()).error, 'unauthorized');

  account('eddie', 'eddie@corp.example');
  const { browser } = await signUp(gh, 'eddie');
  n = seen.length;
  assert.equal((await browser.fetch(`${gh.url}/api/items`)).status, 200, 'GET needs only a sign-in');
  const post = () => browser.fetch(`${gh.url}/api/items`, { method: 'POST', body: '{}', headers: { origin: gh.url } });
  const refused = await post();
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error, 'access_denied');
  assert.equal(seen.length, n + 1, 'the refused POST never reached the origin');
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  await admin(gh, 'PATCH', `/admin/users/${me.id}`, { roles: ['editor'] });
  browser.jar.get('127.0.0.1').delete('gh_access');
  assert.equal((await post()).status, 200);
  assert.equal(seen.at(-1).headers['x-gatehouse-roles'], 'editor,staff');

  await admin(gh, 'POST', `/admin/users/${me.id}/deactivate`);
  browser.jar.get('127.0.0.1').delete('gh_access');
  assert.equal((await browser.fetch(`${gh.url}/api/items`)).status, 401);
});

test('an invitation to an existing user attaches a new identity and adds its roles', async () => {
  account('dana', 'dana@corp.example');
  const { browser } = await signUp(gh, 'dana');
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  assert.equal((await admin(gh, 'POST', '/admin/users/usr_nobody/invitations', {})).status, 404);
  const inv = await invite(gh, { roles: ['admin'] }, `/admin/users/${me.id}/invitations`);
  account('dana-laptop', 'dana@corp.example');
  const { start, browser: other } = await invitationLink(gh, inv.url);
  assert.equal((await oidcSignIn(other, gh.url, { login: 'dana-laptop', startUrl: start })).status, 302);
  const again = await (await other.fetch(`${gh.url}/auth/me`)).json();
  assert.equal(again.id, me.id, 'the same user');
  assert.deepEqual(again.roles, ['admin', 'staff']);
  const user = await admin(gh, 'GET', `/admin/users/${me.id}`);
  assert.deepEqual(user.body.identities.map((i) => i.sub).sort(), ['dana', 'dana-laptop']);
});

test('admin invitation API: bad input is 400 and changes nothing; list and delete', async () => {
  const count = async () => (await gh.d1('SELECT COUNT(*) AS n FROM invitations'))[0].n;
  const n = await count();
  for (const body of [{ email: 'nope' }, { roles: ['Bad'] }, { roles: 'x' }, { return_to: '//evil.example' }, { email: 7 }, { extra: 1 }]) {
    const r = await admin(gh, 'POST', '/admin/invitations', body);
    assert.equal(r.status, 400, JSON.stringify(body));
  }
  assert.equal(await count(), n);
  const inv = await invite(gh, { email: 'gone@corp.example' });
  assert.ok((await admin(gh, 'GET', '/admin/invitations')).body.invitations.some((i) => i.id === inv.id && i.email === 'gone@corp.example'));
  assert.equal((await admin(gh, 'DELETE', `/admin/invitations/${inv.id}`)).status, 204);
  assert.equal((await admin(gh, 'DELETE', `/admin/invitations/${inv.id}`)).status, 404);
  assert.equal((await new Client().fetch(inv.url, { headers: { accept: 'application/json' } })).status, 403, 'a deleted invitation is refused');
  const tokens = await gh.d1('SELECT token_hash FROM invitations');
  const secretPart = new URL(inv.url).searchParams.get('invitation');
  assert.ok(tokens.every((t) => t.token_hash !== secretPart), 'only the hash is stored');
});

/**
 * Sends a GET with `path` exactly as written: node's http.request puts the path on the
 * request line untouched (no URL parsing or normalization, unlike fetch or new URL).
 */
function rawRequest(url, path, headers = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers, agent: false, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer for ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

test('path tricks sent raw cannot reach a protected path under a public or weaker rule', async () => {
  account('paula', 'paula@corp.example');
  const { browser } = await signUp(gh, 'paula'); // signed in, not an admin
  const cookie = browser.cookieHeader(gh.url);
  const corpus = [
    '/public/../private/x', '/public/%2e%2e/private/x', '/public/.%2E/private/x', '/public/%2E%2E/private/x',
    '//private/x', '///private/x', '/public//../private/x', '/%70rivate/x', '/%2570rivate/x', '/private%2Fx', '/private%2fx',
    '/public%2F..%2Fprivate%2Fx', '/public/..%2Fprivate/x', '/public/..%2fprivate/x', '/public%5C..%5Cprivate/x',
    '/public\\..\\private/x', '/public/..;/private/x', '/public/.;/../private/x', '/public/%2e%2e;/private/x', '/./private/x',
    '/public/./../private/x', '/private/./x', '/private/x/..', '/public/%252e%252e/private/x', '/public/..%00/private/x',
    '/public/%c0%ae%c0%ae/private/x', '/private%20/x', '/public/x/../../private/x', '/public/../../private/x',
    '/PUBLIC/../private/x', '/public/%2e%2e%2fprivate/x', '//admin/users', '/%61dmin/users', '/public/../admin/users',
  ];
  for (const who of [{ name: 'signed in', headers: { cookie } }, { name: 'anonymous', headers: {} }]) {
    for (const path of corpus) {
      const n = seen.length;
      const r = await rawRequest(gh.url, path, who.headers);
      assert.ok(r.status >= 200 && r.status < 600, `${who.name} ${path}: ${r.text.slice(0, 200)}`);
      const reached = seen.slice(n);
      for (const s of reached) {
        let decoded;
        try { decoded = decodeURIComponent(s.url.split('?')[0]); } catch { decoded = s.url; }
        // The origin decodes once and resolves dot-segments: where does it end up?
        const resolved = [];
        for (const seg of decoded.split('/')) if (seg === '..') resolved.pop(); else if (seg && seg !== '.') resolved.push(seg);
        assert.ok(!['private', 'admin'].includes(resolved[0]?.toLowerCase()), `${who.name} ${path} reached the origin as ${s.url}`);
      }
      if (r.status === 200) assert.equal(reached.length, 1, `${who.name} ${path} answered 200 without the origin`);
      if (!reached.length) assert.ok([400, 401, 403, 404].includes(r.status), `${who.name} ${path}: ${r.status}`);
    }
  }
  // What the origin receives is the path that was checked, re-encoded: it decodes once to it.
  const cases = [
    ['/public//a/./b/../c', '/public/a/c'],
    ['/%70ublic/x', '/public/x'],
    ['/public/a%252Fb', '/public/a%252Fb'],
    ['/public/caf%C3%A9?q=1', '/public/caf%C3%A9?q=1'],
    ['/public/a%20b', '/public/a%20b'],
  ];
  for (const [path, want] of cases) {
    const n = seen.length;
    const r = await rawRequest(gh.url, path);
    assert.equal(r.status, 200, `${path}: ${r.text.slice(0, 300)}`);
    assert.equal(seen.length, n + 1);
    assert.equal(seen.at(-1).url, want, path);
  }
  // An anonymous browser is sent to sign in with the checked path.
  const login = await rawRequest(gh.url, '//app/./x', { accept: 'text/html' });
  assert.equal(login.status, 302);
  assert.equal(login.location, '/auth/login?return_to=%2Fapp%2Fx');
});

test('a returning user refused after the policy changed; closed sign-up', { timeout: 240_000 }, async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const stateDir = await mkdtemp(join(tmpdir(), 'gh-policy-'));
  try {
    account('olga', 'olga@old.example');
    account('stan', 'stan@corp.example');
    // 1. No POLICY: open, today's behaviour.
    let g = await startGatehouse({ port: ports.restart, stateDir, vars: vars(null), secrets });
    let olga;
    try {
      const page = await (await fetch(`${g.url}/auth/login`, { headers: { accept: 'text/html' } })).text();
      assert.doesNotMatch(page, /id="notice"/);
      olga = (await signIn(g, 'olga')).browser;
      assert.equal((await olga.fetch(`${g.url}/auth/me`)).status, 200);
      await signIn(g, 'stan');
    } finally { await g.stop(); }
    // 2. Closed, corp.example only.
    g = await startGatehouse({ port: ports.restart, stateDir, vars: vars({ sign_up: 'closed', allowed_email_domains: ['corp.example'] }), secrets });
    try {
      // Olga's session: the renewal refuses it and ends it.
      const session = olga.cookie(g.url, 'gh_session');
      olga.jar.get('127.0.0.1').delete('gh_access');
      const me = await olga.fetch(`${g.url}/auth/me`);
      assert.equal(me.status, 401);
      assert.equal((await fetch(`${g.url}/auth/me`, { headers: { cookie: `gh_session=${session}` } })).status, 401, 'the session ended');
      const [olgaUser] = await usersWithIdentity(g, 'olga');
      assert.ok((await deniedEvents(g)).some((e) => e.user_id === olgaUser.user_id && e.detail.at === 'renewal'));
      // …and her next sign-in.
      const again = await signInJson(g, 'olga');
      assert.equal(again.res.status, 403);
      assert.match((await again.res.json()).message, /Only corp\.example accounts/);
      // Stan still signs in; a new identity does not.
      assert.equal((await signIn(g, 'stan')).res.status, 302);
      account('newcomer', 'newcomer@corp.example');
      const nope = await signInJson(g, 'newcomer');
      assert.equal(nope.res.status, 403);
      assert.match((await nope.res.json()).message, /does not accept new accounts/);
      assert.deepEqual(await usersWithIdentity(g, 'newcomer'), []);
    } finally { await g.stop(); }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});

test('a bad POLICY is a configuration error naming the key', async () => {
  const g = await startGatehouse({ vars: { ...vars({ sign_up: 'sometimes' }) }, secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: secret } });
  try {
    const r = await fetch(`${g.url}/auth/login`);
    assert.equal(r.status, 500);
    assert.match((await r.json()).message, /POLICY/);
    assert.ok(await g.waitForLog(/configuration error: POLICY: sign_up must be "open", "invite" or "closed"/));
  } finally { await g.stop(); }
});
