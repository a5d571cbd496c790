// openapi.json is kept true in both directions:
// 1. Source → document: every arm of the Worker's route tables (`route` in src/app/mod.rs, and
//    the `route` of every module it mounts under a prefix, e.g. `(_, ["admin", rest @ ..]) =>
//    admin::route`) is a documented operation, and every documented operation is such an arm.
// 2. Document → Worker: every documented operation, sent to the real Worker (wrangler dev)
//    with real ids (a signed-in user with three sessions), answers one of the statuses its
//    document lists — never an undocumented one — and never the "no such route" 404/405;
//    every documented request example is accepted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ROOT, startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const doc = JSON.parse(await readFile(join(ROOT, 'openapi.json'), 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every documented operation: { method, path, op, params }. */
function operations() {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const params = [...(item.parameters ?? []), ...(item[method].parameters ?? [])];
      out.push({ method, path, op: item[method], params });
    }
  }
  return out;
}

/** `/admin/users/{id}/sessions/{session_id}` → `/admin/users/{}/sessions/{}`. */
const shape = (path) => path.replace(/\{[^}]+\}/g, '{}');

/** The body of `fn NAME…(…) {…}` in `src`, by brace matching. */
function fnBody(src, signature) {
  const at = src.indexOf(signature);
  assert.ok(at >= 0, `${signature} not found`);
  let i = src.indexOf('{', src.indexOf(')', at));
  const start = i;
  for (let depth = 0; i < src.length; i++) {
    if (src[i] === '{') depth++;
    if (src[i] === '}' && --depth === 0) return src.slice(start, i + 1);
  }
  throw new Error(`unbalanced ${signature}`);
}

/** `(Method::Get, ["auth", "callback", name])` arms of a route table, as "GET /auth/callback/{}". */
function armsOf(body, prefix) {
  const arms = [];
  for (const m of body.matchAll(/\(Method::(\w+),\s*\[([^\]]*)\]\s*\)/g)) {
    const segments = m[2].split(',').map((s) => s.trim()).filter(Boolean);
    const path = segments.map((s) => (/^"[^"]*"$/.test(s) ? s.slice(1, -1) : '{}')).join('/');
    // `[""]` is the root of the table.
    arms.push(`${m[1].toUpperCase()} ${`${prefix}/${path}`.replace(/\/$/, '') || '/'}`);
  }
  return arms;
}

/** Every route the Worker answers, from its source. */
async function sourceRoutes() {
  const app = await readFile(join(ROOT, 'src/app/mod.rs'), 'utf8');
  const routes = new Set(armsOf(fnBody(app, 'async fn route<'), ''));
  // Sub-tables mounted under a prefix.
  // (The prefix may be several segments: `(_, ["auth", "passkeys", rest @ ..]) => passkeys::route`.)
  for (const m of fnBody(app, 'async fn route<').matchAll(/\(_,\s*\[((?:"[\w-]+",\s*)+)rest @ \.\.\]\)\s*=>\s*(\w+)::route/g)) {
    const prefix = [...m[1].matchAll(/"([\w-]+)"/g)].map((s) => `/${s[1]}`).join('');
    const sub = await readFile(join(ROOT, `src/app/${m[2]}.rs`), 'utf8');
    for (const r of armsOf(fnBody(sub, 'pub async fn route<'), prefix)) routes.add(r);
  }
  // The OpenID Provider's tables, asked before the main table (`oauth::route`), and its admin
  // routes, asked first by the admin table (`oauth::admin_route`).
  assert.match(fnBody(app, 'async fn route<'), /oauth::route\(/, 'the OpenID Provider table is mounted');
  const op = await readFile(join(ROOT, 'src/app/oauth/mod.rs'), 'utf8');
  for (const r of armsOf(fnBody(op, 'pub async fn route<'), '')) routes.add(r);
  const opAdmin = await readFile(join(ROOT, 'src/app/oauth/admin.rs'), 'utf8');
  for (const r of armsOf(fnBody(opAdmin, 'pub async fn route<'), '/admin')) routes.add(r);
  // `/healthz` is answered before the route table (no configuration needed).
  const liveness = fnBody(app, 'pub fn liveness(');
  const health = liveness.match(/req\.path\(\) == "([^"]+)"/);
  assert.ok(health, 'the liveness route is found in liveness()');
  routes.add(`GET ${health[1]}`);
  return routes;
}

test('the document is OpenAPI 3.1, its references resolve, and every path parameter is declared', () => {
  assert.match(doc.openapi, /^3\.1\.\d+$/);
  assert.ok(doc.info?.title && doc.info?.version);
  const refs = JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g);
  for (const [, ref] of refs) {
    const target = ref.split('/').reduce((o, k) => o?.[k], doc);
    assert.ok(target, `#/${ref} resolves`);
  }
  const ids = new Set();
  for (const { method, path, op, params } of operations()) {
    assert.ok(op.operationId && !ids.has(op.operationId), `${method} ${path} has a unique operationId`);
    ids.add(op.operationId);
    assert.ok(op.summary, `${method} ${path} has a summary`);
    assert.ok(Object.keys(op.responses ?? {}).length > 0, `${method} ${path} has responses`);
    for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])) {
      assert.ok(params.some((p) => p.in === 'path' && p.name === name && p.required), `${method} ${path} declares {${name}}`);
    }
    if (path.startsWith('/admin/')) {
      assert.deepEqual(op.security, [{ adminKey: [] }], `${method} ${path} needs the admin key`);
      assert.ok(op.responses[401] && op.responses[429], `${method} ${path} documents 401 and 429`);
    }
  }
});

test('every route in the Worker\'s route tables is documented, and nothing else is', async () => {
  const inSource = await sourceRoutes();
  assert.ok(inSource.size > 20, `found ${inSource.size} routes in the source`);
  assert.ok(inSource.has('GET /admin/users/{}') && inSource.has('GET /auth/callback/{}'), 'the parser sees admin and auth routes');
  const documented = new Set(operations().map(({ method, path }) => `${method.toUpperCase()} ${shape(path)}`));
  const undocumented = [...inSource].filter((r) => !documented.has(r));
  const missing = [...documented].filter((r) => !inSource.has(r));
  assert.deepEqual(undocumented, [], 'routes the Worker answers that openapi.json does not describe');
  assert.deepEqual(missing, [], 'operations in openapi.json that the Worker has no route for');
});

// ---------------------------------------------------------------------------------------
// Through the real Worker.

let gh;
let idp;
let KEY;
const fx = {}; // fixtures: user, browsers, sessions

before(async () => {
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`], token_endpoint_auth_method: 'client_secret_basic' }] });
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  KEY = secrets.ADMIN_API_KEY;
  gh = await startGatehouse({ port, vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } } }, secrets });
  // One user with three sessions: A acts, B is revoked by A, C is revoked by the admin.
  for (const name of ['a', 'b', 'c']) {
    const browser = new Client();
    await oidcSignIn(browser, gh.url, { login: 'opal' });
    fx[name] = { browser, me: await (await browser.fetch(`${gh.url}/auth/me`)).json() };
  }
  fx.id = fx.a.me.id;
  const made = await fetch(`${gh.url}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'cf-connecting-ip': '192.0.2.77' },
    body: JSON.stringify({ name: 'Walk', type: 'confidential', redirect_uris: ['https://app.example/cb'] }),
  });
  assert.equal(made.status, 201);
  fx.clientId = (await made.json()).client_id;
  // An invitation for DELETE /admin/invitations/{id}.
  const inv = await fetch(`${gh.url}/admin/invitations`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(inv.status, 201);
  fx.invitation = (await inv.json()).id;
});
after(async () => { await gh?.stop(); await idp?.close(); });

/** A real value for each documented parameter. */
function paramValue(path, p) {
  const values = {
    provider: 'dev',
    id: path.startsWith('/auth/sessions') ? fx.b.me.session_id : path.startsWith('/admin/clients') ? fx.clientId : path.startsWith('/admin/invitations') ? fx.invitation : fx.id,
    client_id: fx.clientId,
    session_id: fx.c.me.session_id,
    issuer: idp.issuer,
    sub: 'opal',
    // An invitation that does not exist (or is used up): answered, and refused.
    gh_invite: 'no-such-invitation',
  };
  assert.ok(p.name in values, `the test knows a value for ${p.name} of ${path}`);
  return values[p.name];
}

/** Operations in an order that keeps the fixtures alive as long as they are needed. */
function rank({ method, path }) {
  if (path.startsWith('/admin/')) {
    if (path === '/admin/users/{id}/sessions/{session_id}') return 6;
    if (method === 'delete') return path === '/admin/users/{id}' ? 9 : 6.5;
    if (/activate$/.test(path)) return path.endsWith('/deactivate') ? 7 : 8;
    return 5;
  }
  if (path === '/auth/logout' || path === '/oauth/end_session') return 4;
  return method === 'delete' ? 3 : 1;
}

/**
 * The status each operation must answer in this walk (fixtures and order as set up above) —
 * one status, not "any documented one", so that an operation that fails differently fails
 * the test. Each must also be documented.
 */
const EXPECTED = {
  'GET /healthz': 200,
  'GET /': 200,
  'GET /.well-known/jwks.json': 200,
  'GET /auth/login': 200, // the provider list (no provider named)
  'GET /auth/callback/{provider}': 400, // no login transaction
  'POST /auth/callback/{provider}': 400, // an invitation that does not exist
  'POST /auth/magic-link': 400, // no magic-link provider configured
  'POST /auth/magic-link/verify': 400, // no email provider configured
  'GET /auth/me': 200,
  'POST /auth/token': 200,
  'OPTIONS /auth/token': 204,
  'GET /auth/sessions': 200,
  'GET /auth/identities': 200,
  'DELETE /auth/sessions/{id}': 204, // session B, by session A
  'DELETE /auth/identities': 409, // the user's only identity
  'POST /auth/logout': 204,
  'GET /admin/users': 200,
  'POST /admin/users': 201,
  'GET /admin/users/{id}': 200,
  'PATCH /admin/users/{id}': 200,
  'GET /admin/users/{id}/sessions': 200,
  'GET /admin/users/{id}/events': 200,
  'POST /admin/magic-links': 409, // no magic-link provider configured
  'POST /admin/invitations': 201,
  'GET /admin/invitations': 200,
  'DELETE /admin/invitations/{id}': 204,
  'POST /admin/users/{id}/invitations': 201,
  'DELETE /admin/users/{id}/sessions/{session_id}': 204, // session C
  'DELETE /admin/users/{id}/sessions': 204,
  'DELETE /admin/users/{id}/identities': 409, // the user's only identity
  'POST /admin/users/{id}/deactivate': 200,
  'POST /admin/users/{id}/activate': 200,
  'DELETE /admin/users/{id}': 204,
  // No passkey provider is configured in this walk: each passkey route says so.
  'GET /auth/passkeys.js': 200,
  'POST /auth/passkeys/login/options': 400,
  'POST /auth/passkeys/login': 400,
  'POST /auth/passkeys/register/options': 400,
  'POST /auth/passkeys/register': 400,
  'GET /auth/passkeys': 400,
  'PATCH /auth/passkeys/{id}': 400,
  'DELETE /auth/passkeys/{id}': 400,
  'GET /.well-known/openid-configuration': 200,
  'GET /.well-known/oauth-authorization-server': 200,
  'GET /oauth/authorize': 400, // no client_id: an error page, never a redirect
  'POST /oauth/authorize': 400, // a consent form naming no client
  'POST /oauth/token': 400, // no form body
  'OPTIONS /oauth/token': 204,
  'GET /oauth/userinfo': 401, // no access token
  'POST /oauth/userinfo': 401,
  'OPTIONS /oauth/userinfo': 204,
  'POST /oauth/revoke': 400, // no form body
  'POST /oauth/introspect': 400,
  'GET /auth/apps': 200,
  'DELETE /auth/apps/{client_id}': 204, // never consented to: nothing to withdraw
  'GET /oauth/end_session': 200, // the sign-out page
  'POST /oauth/end_session': 303, // signs this browser out (session A: after everything it does)
  'POST /oauth/register': 403, // dynamic registration is off
  'GET /.well-known/oauth-protected-resource': 400, // not a protected resource
  'GET /admin/clients': 200,
  'POST /admin/clients': 201,
  'GET /admin/clients/{id}': 200,
  'PATCH /admin/clients/{id}': 200,
  'POST /admin/clients/{id}/secret': 200,
  'DELETE /admin/clients/{id}': 204,
};

test('every documented operation answers through the Worker with the status it must, a documented one', async () => {
  const ops = operations().sort((x, y) => rank(x) - rank(y));
  const results = [];
  for (const { method, path, op, params } of ops) {
    let url = path;
    const query = new URLSearchParams();
    for (const p of params) {
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(paramValue(path, p)));
      if (p.in === 'query' && p.required) query.set(p.name, paramValue(path, p));
    }
    if ([...query].length) url += `?${query}`;
    const headers = { origin: gh.url, 'cf-connecting-ip': '192.0.2.77' };
    if (path.startsWith('/admin/')) headers.authorization = `Bearer ${KEY}`;
    let body;
    const example = op.requestBody?.content?.['application/json']?.example;
    if (example !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(example);
    } else if (op.requestBody?.required) {
      assert.fail(`${method} ${path}: a required body needs a JSON example`);
    }
    const res = await fx.a.browser.fetch(`${gh.url}${url}`, { method: method.toUpperCase(), headers, body });
    const text = await res.text();
    results.push(`${method.toUpperCase()} ${url.split('?')[0]} → ${res.status}`);
    const documented = Object.keys(op.responses);
    const name = `${method.toUpperCase()} ${path}`;
    assert.ok(name in EXPECTED, `${name} is documented: add the status it must answer here to EXPECTED`);
    assert.ok(documented.includes(String(EXPECTED[name])), `${name}: the expected ${EXPECTED[name]} is documented (${documented})`);
    assert.equal(res.status, EXPECTED[name], `${name} answered ${res.status}, expected ${EXPECTED[name]}: ${text.slice(0, 200)}`);
    assert.notEqual(res.status, 405, `${method} ${path}`);
    if (res.status === 404) assert.doesNotMatch(text, /There is nothing here/, `${method} ${path} is a route`);
    assert.ok(res.status < 500, `${method} ${path}: ${text.slice(0, 200)}`);
  }
  assert.deepEqual(Object.keys(EXPECTED).filter((k) => !ops.some(({ method, path }) => `${method.toUpperCase()} ${path}` === k)), [], 'EXPECTED names only documented operations');
  // The real ids made these succeed, not just exist.
  for (const expected of ['GET /admin/users → 200', `GET /admin/users/${fx.id} → 200`, 'POST /admin/users → 201', `PATCH /admin/users/${fx.id} → 200`,
    `DELETE /auth/sessions/${fx.b.me.session_id} → 204`, `DELETE /admin/users/${fx.id}/sessions/${fx.c.me.session_id} → 204`, `DELETE /admin/users/${fx.id} → 204`]) {
    assert.ok(results.includes(expected), `${expected} in\n${results.join('\n')}`);
  }
});

test('other methods on documented /auth and /admin paths are 405, unknown paths 404', async () => {
  for (const path of Object.keys(doc.paths).filter((p) => /^\/(auth|admin)\//.test(p))) {
    const url = `${gh.url}${path.replace(/\{[^}]+\}/g, 'x')}`;
    const res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${KEY}`, 'cf-connecting-ip': '192.0.2.78' } });
    assert.equal(res.status, 405, `PUT ${path}`);
  }
  for (const path of ['/auth/nope', '/admin/nope', '/auth/identities/x', '/nope']) {
    const res = await fetch(`${gh.url}${path}`, { headers: { authorization: `Bearer ${KEY}`, 'cf-connecting-ip': '192.0.2.78' } });
    assert.equal(res.status, 404, path);
  }
});
