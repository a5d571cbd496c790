// A local fake of Stytch's consumer API (the shapes of docs/vendors.md), on 127.0.0.1 and a
// free port, for the integration tests. It checks HTTP Basic `project_id:secret`, answers
// every call with `request_id` and `status_code`, and fails the documented way:
// `{status_code, request_id, error_type, error_message, error_url}`.
//
// - POST magic_links/email/login_or_create: creates the user when the address is new, and
//   "sends" a link: `<login|signup magic link url>?stytch_token_type=magic_links&token=…`,
//   recorded in `fake.sent` so a test can read the URL Gatehouse passed. Sends to one address
//   closer than `sendIntervalMs` apart get 429 `too_many_requests` (Stytch: about 1/s).
// - POST magic_links/authenticate: single-use tokens that expire after the requested
//   minutes; a used, expired or unknown token is 401 `unable_to_auth_magic_link`. PKCE: a
//   token minted with a `code_challenge` needs the `code_verifier` whose base64url SHA-256 it
//   is, else 400 `pkce_mismatch` (the token stays unused).
// - POST sessions/authenticate, POST sessions/revoke (404 `session_not_found`), GET users/{id}.
// - `fault(path, {status, body, raw, delayMs, once})` makes one endpoint slow or failing.
import { createServer } from 'node:http';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

const ERROR_URL = 'https://stytch.com/docs/api/errors';

function isEmail(s) {
  return typeof s === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s) && s.length <= 254;
}

function isHttpUrl(s) {
  try { return ['http:', 'https:'].includes(new URL(s).protocol); } catch { return false; }
}

/**
 * Starts the fake. `sendIntervalMs` (default 0 here; Stytch's is about 1000) is the smallest
 * gap between sends to one address.
 */
export async function startFakeStytch({ projectId = `project-test-${randomUUID()}`, secret = `secret-test-${randomBytes(12).toString('hex')}`, sendIntervalMs = 0 } = {}) {
  const users = new Map(); // user_id → user
  const byEmail = new Map(); // lower-cased email → user_id
  const tokens = new Map(); // token → { userId, emailId, expiresAt, used, codeChallenge }
  const sessions = new Map(); // session_token → session
  const lastSend = new Map(); // email → ms
  const faults = new Map(); // path → fault
  const timers = new Set();
  const fake = {
    projectId,
    secret,
    sendIntervalMs,
    /** Every link "sent": { email, link, userId, userCreated, at }. */
    sent: [],
    /** Every request: { method, path, body, auth }. */
    calls: [],
    /** Session tokens revoked through sessions/revoke. */
    revoked: [],
    users,
    sessions,
  };

  const requestId = () => `request-id-test-${randomUUID()}`;
  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...body, request_id: body.request_id ?? requestId(), status_code: status }));
  };
  const error = (res, status, type, message) => send(res, status, {
    error_type: type, error_message: message, error_url: `${ERROR_URL}/${status}#${type}`,
  });

  const newUser = (email) => {
    const user = {
      user_id: `user-test-${randomUUID()}`,
      emails: [{ email_id: `email-test-${randomUUID()}`, email, verified: false }],
      name: { first_name: '', middle_name: '', last_name: '' },
      status: 'active',
      phone_numbers: [],
      webauthn_registrations: [],
      providers: [],
      created_at: new Date().toISOString(),
    };
    users.set(user.user_id, user);
    byEmail.set(email.toLowerCase(), user.user_id);
    return user;
  };

  /** Changes a user's email at the vendor (the next login_or_create finds them by it). */
  fake.setEmail = (userId, email) => {
    const u = users.get(userId);
    byEmail.delete(u.emails[0].email.toLowerCase());
    u.emails[0] = { ...u.emails[0], email };
    byEmail.set(email.toLowerCase(), userId);
  };
  /** Sets a user's name at the vendor. */
  fake.setName = (userId, name) => { users.get(userId).name = { first_name: '', middle_name: '', last_name: '', ...name }; };
  /** The user id of an address, if the vendor knows it. */
  fake.userIdOf = (email) => byEmail.get(email.toLowerCase());
  /** The last link sent to `email`. */
  fake.lastLink = (email) => [...fake.sent].reverse().find((s) => s.email === email)?.link;
  /** Expires every outstanding magic-link token (as if their minutes had passed). */
  fake.expireTokens = () => { for (const t of tokens.values()) t.expiresAt = 0; };
  /** Makes `path` fail or stall: { status, body, raw, delayMs, once }; null clears it. */
  fake.fault = (path, f) => { if (f) faults.set(path, f); else faults.delete(path); };
  fake.callsTo = (path) => fake.calls.filter((c) => c.path === path);

  const authorized = (req) => {
    const expected = Buffer.from(`Basic ${Buffer.from(`${projectId}:${secret}`).toString('base64')}`);
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };

  const sessionFor = (userId, minutes, emailId) => {
    const now = Date.now();
    const session = {
      session_id: `session-test-${randomUUID()}`,
      user_id: userId,
      started_at: new Date(now).toISOString(),
      last_accessed_at: new Date(now).toISOString(),
      expires_at: new Date(now + minutes * 60_000).toISOString(),
      attributes: { ip_address: '', user_agent: '' },
      authentication_factors: [{ type: 'magic_link', delivery_method: 'email', email_factor: { email_id: emailId } }],
    };
    const token = randomBytes(32).toString('base64url');
    sessions.set(token, session);
    return { token, session };
  };

  const routes = {
    'POST magic_links/email/login_or_create': (body, res) => {
      if (!isEmail(body.email)) return error(res, 400, 'invalid_email', 'Email format is invalid.');
      for (const f of ['login_magic_link_url', 'signup_magic_link_url']) {
        if (body[f] !== undefined && !isHttpUrl(body[f])) return error(res, 400, 'invalid_magic_link_url', `${f} is not a valid URL.`);
      }
      const key = body.email.toLowerCase();
      const now = Date.now();
      if (now - (lastSend.get(key) ?? -Infinity) < fake.sendIntervalMs) {
        return error(res, 429, 'too_many_requests', 'Too many requests have been made.');
      }
      lastSend.set(key, now);
      let userId = byEmail.get(key);
      const created = !userId;
      if (created) userId = newUser(body.email).user_id;
      const user = users.get(userId);
      const url = created ? body.signup_magic_link_url : body.login_magic_link_url;
      const minutes = (created ? body.signup_expiration_minutes : body.login_expiration_minutes) ?? 60;
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, { userId, emailId: user.emails[0].email_id, expiresAt: now + minutes * 60_000, used: false, codeChallenge: body.code_challenge });
      if (url) {
        const link = new URL(url);
        link.searchParams.set('stytch_token_type', 'magic_links');
        link.searchParams.set('token', token);
        fake.sent.push({ email: body.email, link: link.toString(), userId, userCreated: created, at: now, minutes });
      }
      send(res, 200, { user_id: userId, email_id: user.emails[0].email_id, user_created: created });
    },
    'POST magic_links/authenticate': (body, res) => {
      const t = tokens.get(body.token);
      if (!t || t.used || Date.now() > t.expiresAt) {
        return error(res, 401, 'unable_to_auth_magic_link', 'Magic link could not be authenticated because it was either already used or expired. Send another magic link to this user.');
      }
      if (t.codeChallenge !== undefined) {
        const verifier = typeof body.code_verifier === 'string' ? body.code_verifier : '';
        if (createHash('sha256').update(verifier).digest('base64url') !== t.codeChallenge) {
          return error(res, 400, 'pkce_mismatch', 'The code_verifier does not match the code_challenge of this magic link.');
        }
      }
      t.used = true;
      const user = users.get(t.userId);
      const email = user.emails.find((e) => e.email_id === t.emailId);
      if (email) email.verified = true;
      let session = null;
      let sessionToken = '';
      if (body.session_duration_minutes !== undefined) {
        ({ token: sessionToken, session } = sessionFor(t.userId, body.session_duration_minutes, t.emailId));
      }
      send(res, 200, {
        user_id: t.userId, method_id: t.emailId, session_token: sessionToken,
        session_jwt: sessionToken ? `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: t.userId })).toString('base64url')}.sig` : '',
        user, session, reset_sessions: false,
      });
    },
    'POST sessions/authenticate': (body, res) => {
      if ((body.session_token === undefined) === (body.session_jwt === undefined)) {
        return error(res, 400, 'invalid_argument', 'Exactly one of session_token or session_jwt must be provided.');
      }
      const s = sessions.get(body.session_token);
      if (!s) return error(res, 404, 'session_not_found', 'Session could not be found.');
      send(res, 200, { session: s, session_token: body.session_token, session_jwt: '', user: users.get(s.user_id) });
    },
    'POST sessions/revoke': (body, res) => {
      if (!body.session_token || !sessions.has(body.session_token)) {
        return error(res, 404, 'session_not_found', 'Session could not be found.');
      }
      sessions.delete(body.session_token);
      fake.revoked.push(body.session_token);
      send(res, 200, {});
    },
  };

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString();
    const path = new URL(req.url, 'http://x').pathname.replace(/^\/v1\//, '');
    let body = {};
    try { body = raw ? JSON.parse(raw) : {}; } catch { body = null; }
    fake.calls.push({ method: req.method, path, body, auth: req.headers.authorization });

    // Credentials first, as the real API does: an injected failure never hides a request
    // that Stytch would have refused as unauthorized.
    if (!authorized(req)) return error(res, 401, 'unauthorized_credentials', 'Unauthorized credentials.');
    const f = faults.get(path);
    if (f) {
      if (f.once) faults.delete(path);
      if (f.delayMs) {
        await new Promise((r) => { const t = setTimeout(() => { timers.delete(t); r(); }, f.delayMs); timers.add(t); });
        if (res.destroyed) return;
      }
      if (f.status) {
        if (f.raw !== undefined) { res.writeHead(f.status, { 'content-type': 'application/json' }); res.end(f.raw); return; }
        if (f.body) { send(res, f.status, f.body); return; }
        return error(res, f.status, f.status >= 500 ? 'internal_server_error' : 'bad_request', 'Injected failure.');
      }
    }

    if (body === null) return error(res, 400, 'invalid_json', 'The request body is not valid JSON.');
    const user = req.method === 'GET' && path.match(/^users\/([^/]+)$/);
    if (user) {
      const u = users.get(decodeURIComponent(user[1]));
      return u ? send(res, 200, { ...u }) : error(res, 404, 'user_not_found', 'User could not be found.');
    }
    const route = routes[`${req.method} ${path}`];
    if (!route) return error(res, 404, 'not_found', 'Endpoint not found.');
    route(body, res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  fake.port = server.address().port;
  /** The API base to configure as `api_url`. */
  fake.url = `http://127.0.0.1:${fake.port}/v1/`;
  fake.close = async () => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return fake;
}
