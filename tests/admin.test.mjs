// The admin API (README "Admin API"), self-service linking and unlinking, audit events and their
// pruning by the cron handler — through the real Worker (wrangler dev, local D1 and KV), with
// users signed in through two real OpenID Connect providers (npm `oidc-provider`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, freshRateWindow, Client, oidcSignIn } from './support/harness.mjs';
import { expiredAccess, signingKeyOf } from './support/jwt.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { startFakeStytch } from './support/fake-stytch.mjs';

let gh;
let idp; // provider "dev"
let idp2; // provider "other": a second, independent issuer
let KEY;
let SIGNING_KEY;

before(async () => {
  const port = await freePort();
  const s1 = randomBytes(24).toString('base64url');
  const s2 = randomBytes(24).toString('base64url');
  const client = (secret, name) => ({ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/${name}`], token_endpoint_auth_method: 'client_secret_basic' });
  idp = await startOidcProvider({ clients: [client(s1, 'dev')] });
  idp2 = await startOidcProvider({ clients: [client(s2, 'other')] });
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: s1, PROVIDER_OTHER_SECRET: s2 };
  KEY = secrets.ADMIN_API_KEY;
  SIGNING_KEY = signingKeyOf(secrets);
  gh = await startGatehouse({
    port,
    testScheduled: true,
    vars: {
      PROVIDERS: {
        dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Dev' },
        other: { kind: 'oidc', issuer: idp2.issuer, client_id: 'gatehouse', display_name: 'Other' },
      },
    },
    secrets,
  });
});
after(async () => { await gh?.stop(); await idp?.close(); await idp2?.close(); });

// Each test speaks from its own client IP, so that one test's failed key attempts cannot
// rate-limit another's.
let ipSeq = 0;
const newIp = () => `198.51.100.${++ipSeq}`;
let IP = newIp();

/** An admin API call. `key: null` sends no Authorization header. */
async function admin(method, path, { body, key = KEY, ip = IP, raw } = {}) {
  const headers = { 'cf-connecting-ip': ip, 'user-agent': 'admin-test/1' };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gh.url}${path}`, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

const q = (s) => `'${String(s).replaceAll("'", "''")}'`;
const counts = async () => (await gh.d1('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM identities) AS identities')).at(0);

/** The session each signed-in browser got: its cookie value and who it belongs to. */
const sessionOf = new WeakMap();

/** Signs `login` in at `provider` in a fresh browser; returns { browser, me, session }. */
async function signIn(login, provider = 'dev') {
  const browser = new Client();
  const done = await oidcSignIn(browser, gh.url, { login, provider });
  assert.equal(done.status, 302, `sign-in of ${login}`);
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  const session = browser.cookie(gh.url, 'gh_session');
  sessionOf.set(browser, { me, session });
  return { browser, me, session };
}

/**
 * What the browser gets once its access token has expired: its original session cookie
 * (replayed as it was at sign-in, whatever the browser dropped since) next to an expired
 * access token, so that only a renewal from the session can answer 200.
 */
async function renewedMe(browser) {
  const { me, session } = sessionOf.get(browser);
  const expired = expiredAccess(SIGNING_KEY, gh.url, { sub: me.id, sid: me.session_id });
  const r = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expired}; gh_session=${session}` } });
  assert.equal(r.headers.getSetCookie().some((c) => /^gh_access=[^;]/.test(c)), r.status === 200, 'a fresh access token exactly when renewed');
  return r;
}

const USER_KEYS = ['id', 'name', 'email', 'email_verified', 'phone', 'picture', 'active', 'metadata', 'created_at', 'updated_at', 'last_login_at', 'roles'].sort();
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

test('a missing or wrong key gets the same 401 with no detail; failures are recorded and rate limited per IP', async () => {
  await freshRateWindow(600);
  const ip = newIp();
  const before = await counts();
  const attempts = [
    { key: null, path: '/admin/users' },
    { key: `${KEY}x`, path: '/admin/users' },
    { key: KEY.slice(0, -1), path: '/admin/users/usr_x' },
    { key: '', path: '/admin/users' },
    { key: 'wrong', path: '/admin/does-not-exist' },
  ];
  const bodies = new Set();
  for (const a of attempts) {
    const r = await admin('GET', a.path, { key: a.key, ip });
    assert.equal(r.status, 401, JSON.stringify(a));
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    bodies.add(r.text);
  }
  // Basic auth, or the key without the scheme, is not the key either.
  for (const authorization of [`Basic ${Buffer.from(`admin:${KEY}`).toString('base64')}`, KEY]) {
    const r = await fetch(`${gh.url}/admin/users`, { headers: { authorization, 'cf-connecting-ip': ip } });
    assert.equal(r.status, 401);
    bodies.add(await r.text());
  }
  assert.deepEqual([...bodies], [JSON.stringify({ error: 'unauthorized', message: 'Unauthorized.' })]);
  const write = await admin('POST', '/admin/users', { key: 'nope', ip, body: { name: 'Mallory' } });
  assert.equal(write.status, 401);
  assert.deepEqual(await counts(), before, 'nothing written');

  const events = await gh.d1(`SELECT type, ip, user_agent, detail FROM events WHERE type = 'admin_auth_failed' AND ip = ${q(ip)}`);
  assert.equal(events.length, 8);
  assert.ok(events.every((e) => !e.detail.includes(KEY.slice(0, 10)) && !e.detail.includes('nope')), 'the presented key is never stored');
  assert.deepEqual(new Set(events.map((e) => JSON.parse(e.detail).reason)), new Set(['missing', 'wrong']));

  // The limit is 10 failures per 10 minutes; then even the right key is refused from that IP.
  for (let i = 0; i < 2; i++) assert.equal((await admin('GET', '/admin/users', { key: 'guess', ip })).status, 401);
  assert.equal((await admin('GET', '/admin/users', { key: 'guess', ip })).status, 429);
  const blocked = await admin('GET', '/admin/users', { ip });
  assert.equal(blocked.status, 429);
  assert.equal(blocked.json.error, 'rate_limited');
  assert.equal((await admin('GET', '/admin/users', { ip: newIp() })).status, 200, 'other clients are not affected');
});

test('a burst of concurrent wrong keys from one IP gets at most 10 failures, then 429 even for the right key', async () => {
  await freshRateWindow(600);
  const ip = newIp();
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => admin('GET', '/admin/users', { key: `guess-${i}`, ip })));
  const statuses = burst.map((r) => r.status);
  assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join());
  const tried = statuses.filter((s) => s === 401).length;
  const rightKey = (await admin('GET', '/admin/users', { ip })).status;
  assert.deepEqual({ tried: Math.min(tried, 11), rightKey }, { tried: Math.min(tried, 10), rightKey: 429 },
    `${tried} of 30 concurrent wrong keys were tried (limit 10); then the right key got ${rightKey}`);
});

test('create, get and update a user; every bad input is a clear 400 and writes nothing', async () => {
  const created = await admin('POST', '/admin/users', { body: { email: 'grace@example.test', name: 'Grace', phone: '+1 415 555 0100', metadata: { plan: 'pro', seats: 3 } } });
  assert.equal(created.status, 201);
  const u = created.json;
  assert.deepEqual(Object.keys(u).sort(), USER_KEYS);
  assert.match(u.id, /^usr_/);
  assert.equal(created.headers.get('location'), `/admin/users/${u.id}`);
  assert.equal(u.phone, '+14155550100');
  assert.equal(u.active, true);
  assert.equal(u.email_verified, false);
  assert.deepEqual(u.metadata, { plan: 'pro', seats: 3 });
  assert.match(u.created_at, RFC3339);
  assert.equal(u.last_login_at, null);
  assert.equal((await admin('POST', '/admin/users', { body: {} })).status, 201, 'every field is optional');

  const got = await admin('GET', `/admin/users/${u.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('cache-control'), 'no-store');
  assert.deepEqual(got.json.identities, []);
  assert.equal(got.json.recent_events[0].type, 'created');
  assert.equal(got.json.recent_events[0].ip, IP);
  assert.equal(got.json.recent_events[0].user_agent, 'admin-test/1');

  const patched = await admin('PATCH', `/admin/users/${u.id}`, { body: { name: 'Grace H.', phone: null, metadata: { plan: 'team' } } });
  assert.equal(patched.status, 200);
  assert.equal(patched.json.name, 'Grace H.');
  assert.equal(patched.json.phone, null);
  assert.equal(patched.json.email, 'grace@example.test', 'fields not named stay');
  assert.deepEqual(patched.json.metadata, { plan: 'team' });
  const row = (await gh.d1(`SELECT name, phone, metadata FROM users WHERE id = ${q(u.id)}`))[0];
  assert.deepEqual(row, { name: 'Grace H.', phone: null, metadata: '{"plan":"team"}' });

  const snapshot = async () => JSON.stringify([await counts(), await gh.d1(`SELECT * FROM users WHERE id = ${q(u.id)}`), await gh.d1('SELECT COUNT(*) AS n FROM events')]);
  const before = await snapshot();
  const oversized = { metadata: { blob: 'x'.repeat(8 * 1024) } };
  const cases = [
    [{ raw: '{"name": "x",' }, /not valid JSON/],
    [{ raw: '["name"]' }, /JSON object/],
    [{ raw: '' }, /JSON object/],
    [{ body: { nickname: 'x' } }, /Unknown field "nickname"/],
    [{ body: { name: 'ok', active: false } }, /Unknown field "active"/],
    [{ body: { email: 'not an email' } }, /not a valid email/],
    [{ body: { email: 'a@b' } }, /not a valid email/],
    [{ body: { email: 42 } }, /string or null/],
    [{ body: { phone: '555-0100' } }, /E\.164/],
    [{ body: { name: '   ' } }, /name/],
    [{ body: { metadata: [1, 2] } }, /metadata must be a JSON object/],
    [{ body: oversized }, /8192/],
  ];
  for (const [input, message] of cases) {
    for (const [method, path] of [['PATCH', `/admin/users/${u.id}`], ['POST', '/admin/users']]) {
      const r = await admin(method, path, input);
      assert.equal(r.status, 400, `${method} ${JSON.stringify(input).slice(0, 60)}`);
      assert.equal(r.json.error, 'bad_request');
      assert.match(r.json.message, message);
    }
  }
  const huge = await admin('POST', '/admin/users', { raw: JSON.stringify({ metadata: { blob: 'x'.repeat(70 * 1024) } }) });
  assert.equal(huge.status, 413);
  assert.equal(await snapshot(), before, 'no refused request wrote anything');

  // Unknown ids are 404 on every route that names one.
  for (const [method, path, body] of [
    ['GET', '/admin/users/usr_nobody'], ['PATCH', '/admin/users/usr_nobody', { name: 'x' }], ['DELETE', '/admin/users/usr_nobody'],
    ['POST', '/admin/users/usr_nobody/activate'], ['POST', '/admin/users/usr_nobody/deactivate'],
    ['GET', '/admin/users/usr_nobody/sessions'], ['DELETE', '/admin/users/usr_nobody/sessions'], ['DELETE', '/admin/users/usr_nobody/sessions/abc'],
    ['DELETE', '/admin/users/usr_nobody/identities?issuer=i&sub=s'], ['GET', '/admin/users/usr_nobody/events'],
  ]) {
    const r = await admin(method, path, { body });
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(r.json.error, 'not_found');
  }
  assert.equal((await admin('PUT', `/admin/users/${u.id}`, { body: {} })).status, 405);
  assert.equal(await snapshot(), before);
});

test('list users: cursor pagination newest first over more users than a page, email filter, limits', async () => {
  const tag = randomBytes(4).toString('hex');
  const made = [];
  for (let i = 0; i < 7; i++) {
    const email = i % 3 === 0 ? `shared-${tag}@example.test` : `u${i}-${tag}@example.test`;
    made.push((await admin('POST', '/admin/users', { body: { email, name: `P${i}` } })).json.id);
  }
  const total = (await counts()).users;
  assert.ok(total > 7);
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const r = await admin('GET', `/admin/users?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200);
    assert.ok(r.json.users.length <= 3);
    for (const u of r.json.users) assert.deepEqual(Object.keys(u).sort(), USER_KEYS);
    seen.push(...r.json.users);
    cursor = r.json.next_cursor;
    pages++;
  } while (cursor && pages < 100);
  assert.equal(seen.length, total, 'every user exactly once');
  assert.equal(new Set(seen.map((u) => u.id)).size, total);
  assert.equal(pages, Math.ceil(total / 3));
  for (const id of made) assert.ok(seen.some((u) => u.id === id));
  // Newest first: (created_at, id) never increases down the list.
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1], seen[i]];
    assert.ok(a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id), `order at ${i}`);
  }
  const newest = await admin('GET', '/admin/users?limit=1');
  assert.equal(newest.json.users[0].created_at, seen[0].created_at, 'the newest comes first');
  assert.ok(newest.json.users[0].created_at >= (await admin('GET', `/admin/users/${made.at(-1)}`)).json.created_at);
  assert.equal(typeof newest.json.next_cursor, 'string');

  const all = await admin('GET', '/admin/users');
  assert.equal(all.json.users.length, Math.min(total, 50), 'default limit 50');
  const filtered = await admin('GET', `/admin/users?email=${encodeURIComponent(`SHARED-${tag}@example.test`)}`);
  assert.deepEqual(new Set(filtered.json.users.map((u) => u.id)), new Set([made[0], made[3], made[6]]));
  assert.equal(filtered.json.next_cursor, null);
  const page = await admin('GET', `/admin/users?limit=2&email=shared-${tag}%40example.test`);
  const rest = await admin('GET', `/admin/users?limit=2&email=shared-${tag}%40example.test&cursor=${page.json.next_cursor}`);
  const both = [...page.json.users, ...rest.json.users];
  assert.deepEqual(both.map((u) => u.id), seen.filter((u) => [made[0], made[3], made[6]].includes(u.id)).map((u) => u.id), 'same order as the full list');
  assert.equal(rest.json.next_cursor, null);

  for (const bad of ['limit=0', 'limit=101', 'limit=abc', 'cursor=not-a-cursor', `cursor=${Buffer.from('x.').toString('base64url')}`]) {
    const r = await admin('GET', `/admin/users?${bad}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error, 'bad_request');
  }
  assert.equal((await admin('GET', '/admin/users?limit=100')).status, 200);
});

test('deactivate: sessions stop being renewed, a new sign-in is refused; activate: sign-in works again', async () => {
  const { browser, me } = await signIn('dana');
  const { browser: phone } = await signIn('dana');
  const bystander = await signIn('dana-neighbour');
  assert.equal((await admin('GET', `/admin/users/${me.id}/sessions`)).json.sessions.length, 2);
  assert.equal((await renewedMe(browser)).status, 200, 'renewal works before');

  const d = await admin('POST', `/admin/users/${me.id}/deactivate`);
  assert.equal(d.status, 200);
  assert.equal(d.json.active, false);
  assert.deepEqual(await gh.kv.list(`u:${me.id}:`), [], 'every session revoked');
  assert.equal(await gh.kv.get(`s:${me.session_id}`), null);
  // Once the access token is gone (expired), nothing renews it.
  assert.equal((await renewedMe(browser)).status, 401);
  assert.equal((await renewedMe(phone)).status, 401);
  const token = await fetch(`${gh.url}/auth/token`, { method: 'POST', headers: { origin: gh.url, cookie: `gh_session=${sessionOf.get(phone).session}` } });
  assert.equal(token.status, 401, 'no fresh token from a revoked session');

  const refused = await oidcSignIn(new Client(), gh.url, { login: 'dana' });
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /deactivated/);
  assert.equal((await admin('GET', `/admin/users/${me.id}/sessions`)).json.sessions.length, 0, 'no session made');

  const a = await admin('POST', `/admin/users/${me.id}/activate`);
  assert.equal(a.json.active, true);
  const { me: again } = await signIn('dana');
  assert.equal(again.id, me.id, 'the same user');
  const events = (await admin('GET', `/admin/users/${me.id}/events`)).json.events.map((e) => e.type);
  assert.deepEqual(events.slice(0, 4), ['sign_in', 'activated', 'deactivated', 'sign_in']);
  const deactivated = (await admin('GET', `/admin/users/${me.id}/events`)).json.events.find((e) => e.type === 'deactivated');
  assert.equal(deactivated.detail.sessions_revoked, 2);
  // The sessions ended by the deactivation stay ended after the activation.
  assert.equal((await renewedMe(browser)).status, 401);
  assert.equal((await renewedMe(bystander.browser)).status, 200, "another user's session was never touched");
});

test('delete: identities, sessions and index entries go; the identity can sign up again as a new user', async () => {
  const { browser, me } = await signIn('dora');
  await signIn('dora');
  const before = await counts();
  const r = await admin('DELETE', `/admin/users/${me.id}`);
  assert.equal(r.status, 204);
  assert.equal(r.text, '');
  assert.deepEqual(await gh.d1(`SELECT * FROM users WHERE id = ${q(me.id)}`), []);
  assert.deepEqual(await gh.d1(`SELECT * FROM identities WHERE user_id = ${q(me.id)} OR sub = 'dora'`), []);
  assert.deepEqual(await counts(), { users: before.users - 1, identities: before.identities - 1 });
  assert.deepEqual(await gh.kv.list(`u:${me.id}:`), []);
  assert.equal(await gh.kv.get(`s:${me.session_id}`), null);
  assert.equal((await renewedMe(browser)).status, 401);
  assert.equal((await admin('GET', `/admin/users/${me.id}`)).status, 404);
  assert.equal((await admin('DELETE', `/admin/users/${me.id}`)).status, 404);

  const { me: reborn } = await signIn('dora');
  assert.notEqual(reborn.id, me.id, 'a new user');
  assert.deepEqual((await gh.d1("SELECT user_id FROM identities WHERE sub = 'dora'")).map((x) => x.user_id), [reborn.id]);
  // The deleted user's audit trail stays (until pruned).
  const trail = await admin('GET', `/admin/users/${me.id}/events`);
  assert.equal(trail.status, 200);
  assert.equal(trail.json.events[0].type, 'deleted');
  assert.equal(trail.json.events[0].detail.sessions_revoked, 2);
});

test('sessions: the admin lists and revokes one or all; a user revokes another device of theirs', async () => {
  const { browser: laptop, me } = await signIn('sid');
  const { browser: phone, me: onPhone } = await signIn('sid');
  const { browser: tablet, me: onTablet } = await signIn('sid');
  const list = await admin('GET', `/admin/users/${me.id}/sessions`);
  assert.equal(list.status, 200);
  const ids = list.json.sessions.map((s) => s.id);
  assert.deepEqual(new Set(ids), new Set([me.session_id, onPhone.session_id, onTablet.session_id]));
  for (const s of list.json.sessions) {
    assert.equal(s.provider, 'dev');
    assert.match(s.created_at, RFC3339);
    assert.match(s.expires_at, RFC3339);
  }

  // From the laptop, the user ends the phone's session (README "Routes": revoking a session from
  // another device ends it).
  const own = await (await laptop.fetch(`${gh.url}/auth/sessions`)).json();
  assert.equal(own.sessions.length, 3);
  const cross = await laptop.fetch(`${gh.url}/auth/sessions/${onPhone.session_id}`, { method: 'DELETE', headers: { origin: 'https://evil.example' } });
  assert.equal(cross.status, 403, 'Origin-checked');
  const revoke = await laptop.fetch(`${gh.url}/auth/sessions/${onPhone.session_id}`, { method: 'DELETE', headers: { origin: gh.url } });
  assert.equal(revoke.status, 204);
  assert.equal((await renewedMe(phone)).status, 401, 'the phone is signed out');
  assert.equal((await renewedMe(laptop)).status, 200, 'the laptop is not');

  // The admin revokes one session, then all.
  const other = await signIn('someone-else');
  assert.equal((await admin('DELETE', `/admin/users/${me.id}/sessions/${other.me.session_id}`)).status, 404, "another user's session");
  assert.equal((await admin('DELETE', `/admin/users/${me.id}/sessions/${onTablet.session_id}`)).status, 204);
  assert.equal((await renewedMe(tablet)).status, 401);
  assert.equal((await renewedMe(laptop)).status, 200);
  await signIn('sid');
  assert.equal((await admin('GET', `/admin/users/${me.id}/sessions`)).json.sessions.length, 2);
  assert.equal((await admin('DELETE', `/admin/users/${me.id}/sessions`)).status, 204);
  assert.deepEqual((await admin('GET', `/admin/users/${me.id}/sessions`)).json.sessions, []);
  assert.equal((await renewedMe(laptop)).status, 401);
  assert.equal((await renewedMe(other.browser)).status, 200, "other users' sessions stay");
  const revoked = (await admin('GET', `/admin/users/${me.id}/events`)).json.events.filter((e) => e.type === 'session_revoked');
  assert.equal(revoked.length, 3);
  assert.deepEqual(revoked[0].detail, { by: 'admin', all: true, count: 2 });
});

test('self-service: link a second provider, list identities, unlink one; the last is refused', async () => {
  const { browser, me } = await signIn('lin');
  const before = await counts();
  const linked = await oidcSignIn(browser, gh.url, { provider: 'other', login: 'lin-at-other', link: true, returnTo: '/settings' });
  assert.equal(linked.status, 302);
  assert.equal(linked.headers.get('location'), '/settings');
  assert.deepEqual(await counts(), { users: before.users, identities: before.identities + 1 }, 'no new user');
  const mine = await (await browser.fetch(`${gh.url}/auth/identities`)).json();
  assert.deepEqual(mine.identities.map((i) => [i.issuer, i.sub, i.provider]).sort(), [[idp.issuer, 'lin', 'dev'], [idp2.issuer, 'lin-at-other', 'other']].sort());
  // The linked identity signs in as the same user.
  const { me: viaOther } = await signIn('lin-at-other', 'other');
  assert.equal(viaOther.id, me.id);
  const admin1 = await admin('GET', `/admin/users/${me.id}`);
  assert.equal(admin1.json.identities.length, 2);
  assert.ok(admin1.json.recent_events.some((e) => e.type === 'link' && e.detail.issuer === idp2.issuer));

  // Unlink: Origin-checked, parameters required, unknown → 404.
  const url = (iss, sub) => `${gh.url}/auth/identities?issuer=${encodeURIComponent(iss)}&sub=${encodeURIComponent(sub)}`;
  assert.equal((await browser.fetch(url(idp.issuer, 'lin'), { method: 'DELETE', headers: { origin: 'https://evil.example' } })).status, 403);
  assert.equal((await browser.fetch(`${gh.url}/auth/identities?issuer=x`, { method: 'DELETE', headers: { origin: gh.url } })).status, 400);
  assert.equal((await browser.fetch(url(idp.issuer, 'someone'), { method: 'DELETE', headers: { origin: gh.url } })).status, 404);
  assert.equal((await fetch(url(idp.issuer, 'lin'), { method: 'DELETE' })).status, 401, 'not signed in');
  const un = await browser.fetch(url(idp.issuer, 'lin'), { method: 'DELETE', headers: { origin: gh.url } });
  assert.equal(un.status, 204);
  const last = await browser.fetch(url(idp2.issuer, 'lin-at-other'), { method: 'DELETE', headers: { origin: gh.url } });
  assert.equal(last.status, 409);
  assert.equal((await last.json()).error, 'conflict');
  assert.deepEqual((await gh.d1(`SELECT sub FROM identities WHERE user_id = ${q(me.id)}`)).map((r) => r.sub), ['lin-at-other']);
  // The unlinked identity now signs up as somebody new.
  const { me: fresh } = await signIn('lin');
  assert.notEqual(fresh.id, me.id);
});

test('linking an identity that belongs to another user is refused with 409 and nothing is merged', async () => {
  const { me: nat } = await signIn('nat', 'other');
  const { browser, me: mel } = await signIn('mel');
  const before = await counts();
  const identitiesBefore = await gh.d1('SELECT issuer, sub, user_id FROM identities ORDER BY issuer, sub');
  const r = await oidcSignIn(browser, gh.url, { provider: 'other', login: 'nat', link: true });
  assert.equal(r.status, 409);
  assert.match(await r.text(), /already linked to another user/);
  assert.deepEqual(await counts(), before);
  assert.deepEqual(await gh.d1('SELECT issuer, sub, user_id FROM identities ORDER BY issuer, sub'), identitiesBefore);
  // Both users are intact and mel is still signed in as mel.
  assert.equal((await (await browser.fetch(`${gh.url}/auth/me`)).json()).id, mel.id);
  assert.equal((await admin('GET', `/admin/users/${nat.id}`)).json.identities.length, 1);
  const events = (await admin('GET', `/admin/users/${mel.id}/events`)).json.events.map((e) => e.type);
  assert.ok(events.includes('link_refused'));

  // Linking needs a signed-in user; nothing is started without one.
  const txns = (await gh.kv.list('t:')).length;
  const anon = await fetch(`${gh.url}/auth/login?provider=other&link=1`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('set-cookie'), null);
  assert.equal((await gh.kv.list('t:')).length, txns);
  // Another site cannot start a link in a signed-in browser (it may have planted its own
  // session at the provider).
  const cross = await browser.fetch(`${gh.url}/auth/login?provider=other&link=1`, { headers: { 'sec-fetch-site': 'cross-site' } });
  assert.equal(cross.status, 403);
  assert.equal((await gh.kv.list('t:')).length, txns);
});

test('a revoked session cannot link a provider, even while its access token is unexpired', async () => {
  const { browser, me } = await signIn('rex');
  // A link started while the session was live cannot finish once it is revoked.
  const callback = await oidcSignIn(browser, gh.url, { provider: 'other', login: 'rex-thief', link: true, stopAtCallback: true });
  assert.equal((await admin('DELETE', `/admin/users/${me.id}/sessions`)).status, 204);
  assert.equal((await browser.fetch(`${gh.url}/auth/me`)).status, 200, 'the access token alone is still valid');
  const before = await counts();
  const finished = await browser.fetch(callback, { headers: { accept: 'text/html' } });
  assert.equal(finished.status, 403);
  assert.deepEqual(await counts(), before);
  // Nor can a new link be started from that device.
  const txns = (await gh.kv.list('t:')).length;
  const started = await browser.fetch(`${gh.url}/auth/login?provider=other&link=1`);
  assert.equal(started.status, 401);
  assert.equal((await gh.kv.list('t:')).length, txns);
  assert.equal((await admin('GET', `/admin/users/${me.id}`)).json.identities.length, 1);
});

test('admin unlink: 400 without issuer and sub, 404 for an unknown identity, 409 for the last one', async () => {
  const { browser, me } = await signIn('uma');
  await oidcSignIn(browser, gh.url, { provider: 'other', login: 'uma2', link: true });
  const base = `/admin/users/${me.id}/identities`;
  const p = (iss, sub) => `${base}?issuer=${encodeURIComponent(iss)}&sub=${encodeURIComponent(sub)}`;
  assert.equal((await admin('DELETE', base)).status, 400);
  assert.equal((await admin('DELETE', `${base}?sub=uma`)).status, 400);
  assert.equal((await admin('DELETE', p(idp.issuer, 'nobody'))).status, 404);
  assert.equal((await admin('DELETE', p(idp2.issuer, 'uma2'))).status, 204);
  const last = await admin('DELETE', p(idp.issuer, 'uma'));
  assert.equal(last.status, 409);
  assert.match(last.json.message, /last identity/);
  assert.deepEqual((await admin('GET', `/admin/users/${me.id}`)).json.identities.map((i) => i.sub), ['uma']);
  const unlinkEvent = (await admin('GET', `/admin/users/${me.id}/events`)).json.events.find((e) => e.type === 'unlink');
  assert.deepEqual(unlinkEvent.detail, { by: 'admin', issuer: idp2.issuer, sub: 'uma2' });
});

test('events: sign-in and logout are recorded with time, IP and user agent, newest first, paginated; a callback without a transaction writes none', async () => {
  const browser = new Client();
  const done = await oidcSignIn(browser, gh.url, { login: 'eve' });
  assert.equal(done.status, 302);
  const { id } = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { origin: gh.url, 'user-agent': 'eve-browser/2', 'cf-connecting-ip': '203.0.113.50' } });
  await admin('PATCH', `/admin/users/${id}`, { body: { name: 'Eve' } });
  const all = (await admin('GET', `/admin/users/${id}/events`)).json;
  assert.deepEqual(all.events.map((e) => e.type), ['updated', 'logout', 'sign_in']);
  assert.equal(all.next_cursor, null);
  const logout = all.events[1];
  assert.equal(logout.ip, '203.0.113.50');
  assert.equal(logout.user_agent, 'eve-browser/2');
  assert.match(logout.at, RFC3339);
  assert.deepEqual(all.events[0].detail, { by: 'admin', fields: ['name'] });
  const first = (await admin('GET', `/admin/users/${id}/events?limit=2`)).json;
  assert.equal(first.events.length, 2);
  const second = (await admin('GET', `/admin/users/${id}/events?limit=2&cursor=${first.next_cursor}`)).json;
  assert.deepEqual([...first.events, ...second.events].map((e) => e.id), all.events.map((e) => e.id));
  assert.equal((await admin('GET', `/admin/users/${id}/events?cursor=zzz`)).status, 400);

  // A callback with no transaction is refused without a row: anonymous floods must write
  // nothing (a failed sign-in after a spent transaction is audited: hardening-flows.test.mjs).
  const failedBefore = (await gh.d1("SELECT COUNT(*) AS n FROM events WHERE type = 'sign_in_failed'"))[0].n;
  assert.equal((await fetch(`${gh.url}/auth/callback/dev?code=x&state=y`)).status, 400);
  assert.equal((await gh.d1("SELECT COUNT(*) AS n FROM events WHERE type = 'sign_in_failed'"))[0].n, failedBefore);
});

test('POST /admin/magic-links: 409 without a magic-link provider; bad input is 400', async () => {
  const r = await admin('POST', '/admin/magic-links', { body: { email: 'someone@example.test', return_to: '/welcome' } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error, 'conflict');
  assert.match(r.json.message, /magic-link provider/);
  for (const body of [{}, { email: 'nope' }, { email: 'a@b.co', extra: 1 }, { email: 'a@b.co', return_to: '//evil.example' }]) {
    assert.equal((await admin('POST', '/admin/magic-links', { body })).status, 400, JSON.stringify(body));
  }
  assert.equal((await admin('POST', '/admin/magic-links', { key: 'wrong', ip: newIp(), body: { email: 'a@b.co' } })).status, 401);
});

test('the cron handler prunes audit events older than 90 days and keeps the rest', async () => {
  const now = Math.floor(Date.now() / 1000);
  const day = 86400;
  await gh.d1(`INSERT INTO events (user_id, type, at) VALUES ('usr_old', 'sign_in', ${now - 91 * day}), ('usr_old', 'logout', ${now - 90 * day - 60}), ('usr_old', 'sign_in', ${now - 89 * day}), ('usr_old', 'logout', ${now - 60})`);
  const mark = gh.mark();
  const r = await fetch(`${gh.url}/__scheduled?cron=${encodeURIComponent('17 3 * * *')}`);
  assert.equal(r.status, 200);
  assert.ok(await gh.waitForLog(/gatehouse: pruned [1-9]\d* audit events/, { since: mark }), 'the handler ran and pruned');
  const left = await gh.d1("SELECT at FROM events WHERE user_id = 'usr_old' ORDER BY at");
  assert.deepEqual(left.map((e) => e.at), [now - 89 * day, now - 60]);
  assert.equal((await gh.d1(`SELECT COUNT(*) AS n FROM events WHERE at < ${now - 90 * day}`))[0].n, 0);
});

test('POST /admin/magic-links with a Stytch provider: the emailed link signs the person in from their own browser, once', async () => {
  const stytch = await startFakeStytch();
  const secrets = baseSecrets();
  const g = await startGatehouse({
    vars: { PROVIDERS: { mail: { kind: 'stytch', project_id: stytch.projectId, api_url: stytch.url, display_name: 'Email' } } },
    secrets: { ...secrets, PROVIDER_MAIL_SECRET: stytch.secret },
  });
  try {
    const send = (body, key = secrets.ADMIN_API_KEY) => fetch(`${g.url}/admin/magic-links`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'cf-connecting-ip': '192.0.2.10' }, body: JSON.stringify(body),
    });
    const r = await send({ email: 'ivy@example.test', return_to: '/welcome' });
    assert.equal(r.status, 202);
    assert.deepEqual(await r.json(), { status: 'sent', provider: 'mail', expires_in: 600 });
    assert.equal(r.headers.get('set-cookie'), null);
    assert.equal(stytch.sent.length, 1);
    const { link, email } = stytch.sent[0];
    assert.equal(email, 'ivy@example.test');
    assert.ok(link.startsWith(`${g.url}/auth/callback/mail?gh_invite=`), link);

    // Ivy opens it in her own browser, which never started a sign-in. Opening it spends
    // nothing (mail scanners open links): the page says whose account it opens.
    const ivy = new Client();
    const authenticated = () => stytch.callsTo('magic_links/authenticate').length;
    const page = await ivy.fetch(link, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    const html = await page.text();
    assert.match(html, /<strong id="invitee">ivy@example\.test<\/strong>/);
    const action = new URL(html.match(/<form method="post" action="([^"]+)"/)[1].replaceAll('&amp;', '&'), g.url).toString();
    assert.equal(action, link, 'the button posts the link itself back');
    assert.equal(authenticated(), 0);
    assert.deepEqual(await g.kv.list('s:'), []);
    // Another site cannot press the button for a victim's browser (login CSRF).
    const cross = await new Client().fetch(action, { method: 'POST', headers: { origin: 'https://evil.example', accept: 'text/html' } });
    assert.equal(cross.status, 403);
    assert.equal(authenticated(), 0);
    assert.deepEqual(await g.kv.list('s:'), []);
    // Ivy's own click: a same-origin POST.
    const done = await ivy.fetch(action, { method: 'POST', headers: { origin: g.url, accept: 'text/html' } });
    assert.equal(authenticated(), 1);
    assert.equal(done.status, 302);
    assert.equal(done.headers.get('location'), '/welcome');
    const me = await (await ivy.fetch(`${g.url}/auth/me`)).json();
    assert.equal(me.email, 'ivy@example.test');
    const ids = await g.d1(`SELECT issuer FROM identities WHERE user_id = ${q(me.id)}`);
    assert.deepEqual(ids.map((i) => i.issuer), [`stytch:${stytch.projectId}`]);
    // Once only: the invitation is gone (and Stytch's token is used).
    for (const method of ['GET', 'POST']) {
      const again = await new Client().fetch(link, { method, headers: { origin: g.url } });
      assert.equal(again.status, 400, method);
      assert.equal((await again.json()).error, 'invalid_login_transaction');
    }
    // An ordinary browser-bound transaction cannot be replayed as an invitation.
    const forged = link.replace('gh_invite=', 'gh_state=');
    assert.equal((await new Client().fetch(forged)).status, 400);

    assert.equal((await send({ email: 'ivy@example.test' }, 'wrong')).status, 401);
    assert.equal((await send({ email: 'not-an-email' })).status, 400);
    assert.equal((await send({ email: 'ivy@example.test', provider: 'other' })).status, 400);
    assert.equal(stytch.sent.length, 1, 'nothing else sent');
  } finally {
    await g.stop();
    await stytch.close();
  }
});
