// A local stand-in for LoginRadius (docs/vendors.md, "LoginRadius"), on
// loopback, for the integration tests: one server plays both the hosted page (hub) and the
// API, with LoginRadius's success and error shapes, checking input the way the vendor does.
//
//   GET {hub}/auth.aspx?action=login|register&return_url=<url>
//        the hosted page: signs in (or registers) the user chosen with setUser() and sends the
//        browser to <return_url>?token=<access token> (return_url must be whitelisted).
//   GET {api}identity/v2/auth/account?apikey=K                 (Authorization: Bearer <token>)
//        → flat profile {Uid, ID, Provider, FirstName, LastName, FullName, Email[{Type, Value}],
//          ImageUrl, EmailVerified, CreatedDate, …}
//   GET {api}identity/v2/auth/access_token/validate?apikey=K   → {access_token, expires_in, …}
//   GET {api}identity/v2/auth/access_token/invalidate?apikey=K&preventRefresh=true
//        → {"IsPosted": true}; the token is dead from then on.
//
// Errors: {Description, ErrorCode, Message, IsProviderError, ProviderErrorResponse} with a
// 4xx — 901 bad API key (403), 906 invalid/expired/invalidated access token (401), 908
// missing or malformed parameter (400). Access tokens live tokenTtlMs (15 minutes, as at
// LoginRadius) and can be used until then or until invalidated.
//
// fail(endpoint, mode) makes one API endpoint ('account', 'validate', 'invalidate')
// misbehave: 'hold' (never answers until reset/close: longer than any client timeout),
// 'http500', 'malformed', or {status, body} (any answer, e.g. an ErrorCode body with 200).
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

const ERRORS = {
  901: [403, 'The provided LoginRadius API key is invalid, please use a valid API key of your LoginRadius account.', 'API key is invalid'],
  906: [401, 'The provided access token is invalid or has expired, please use a valid access token.', 'Access token is invalid'],
  908: [400, 'A parameter is not formatted correctly or is missing.', 'Parameter is missing or malformed'],
};

/** The error body LoginRadius answers, with its usual status. */
export function lrError(code, detail) {
  const [status, description, message] = ERRORS[code];
  return { status, body: { Description: detail ? `${description} (${detail})` : description, ErrorCode: code, Message: message, IsProviderError: false, ProviderErrorResponse: null } };
}

export async function startFakeLoginRadius({ apiKey, tokenTtlMs = 15 * 60_000, whitelist = ['127.0.0.1', 'localhost'] }) {
  const tokens = new Map(); // access token → { uid, expiresAt, invalidated }
  const accounts = new Map(); // Uid → profile
  const failures = new Map();
  const held = new Set();
  const calls = [];
  let current = null; // Uid that signs in at the hosted page

  const send = (res, status, body, type = 'application/json') => {
    res.writeHead(status, { 'content-type': type });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const fail = (res, code, detail) => { const e = lrError(code, detail); send(res, e.status, e.body); };

  function misbehave(endpoint, res) {
    const mode = failures.get(endpoint);
    if (!mode) return false;
    if (mode === 'hold') { held.add(res); res.on('close', () => held.delete(res)); return true; }
    if (mode === 'http500') return send(res, 500, { Description: 'An internal error occurred.', ErrorCode: 500, Message: 'Internal server error', IsProviderError: false, ProviderErrorResponse: null }), true;
    if (mode === 'malformed') return send(res, 200, '{"Uid": "x", "Email": [', 'application/json'), true;
    return send(res, mode.status, mode.body), true;
  }

  /** API key and bearer token as LoginRadius checks them; returns the token record or null. */
  function authenticate(url, req, res) {
    const key = url.searchParams.get('apikey');
    if (!key) return fail(res, 908, 'apikey'), null;
    if (key !== apiKey) return fail(res, 901), null;
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer (\S+)$/.exec(auth);
    if (!m) return fail(res, 908, 'access_token'), null;
    const t = tokens.get(m[1]);
    if (!t || t.invalidated || Date.now() > t.expiresAt) return fail(res, 906), null;
    return { token: m[1], ...t, record: t };
  }

  const server = createServer((req, res) => {
    // A fresh connection per call: no keep-alive race between the Worker's connection pool
    // and this server closing idle sockets (a reset would look like a vendor outage).
    res.setHeader('connection', 'close');
    const url = new URL(req.url, base);
    const path = url.pathname;
    if (req.method === 'GET' && path === '/auth.aspx') {
      calls.push({ endpoint: 'hosted', action: url.searchParams.get('action'), returnUrl: url.searchParams.get('return_url') });
      const action = url.searchParams.get('action');
      if (action !== 'login' && action !== 'register') return send(res, 400, '<p>Unknown action</p>', 'text/html');
      let back;
      try { back = new URL(url.searchParams.get('return_url') ?? ''); } catch { return send(res, 400, '<p>return_url is missing or invalid</p>', 'text/html'); }
      if (!whitelist.includes(back.hostname)) return send(res, 403, '<p>This domain is not whitelisted</p>', 'text/html');
      if (!current) return send(res, 409, '<p>fake-loginradius: no user set (call setUser)</p>', 'text/html');
      // As documented: `<return_url>?token=<access_token>`, by plain concatenation (a
      // return_url that has a query of its own gets a second `?`).
      res.writeHead(302, { location: `${back.toString()}?token=${encodeURIComponent(mint(current))}` });
      return res.end();
    }
    const endpoint = {
      '/identity/v2/auth/account': 'account',
      '/identity/v2/auth/access_token/validate': 'validate',
      '/identity/v2/auth/access_token/invalidate': 'invalidate',
    }[path];
    if (req.method !== 'GET' || !endpoint) return send(res, 404, { Description: 'The requested resource was not found.', ErrorCode: 404, Message: 'Not found', IsProviderError: false, ProviderErrorResponse: null });
    calls.push({ endpoint, query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization });
    if (misbehave(endpoint, res)) return;
    const t = authenticate(url, req, res);
    if (!t) return;
    if (endpoint === 'account') return send(res, 200, accounts.get(t.uid));
    if (endpoint === 'validate') {
      return send(res, 200, { access_token: t.token, expires_in: new Date(t.expiresAt).toISOString(), refresh_token: null });
    }
    // invalidate
    const prevent = url.searchParams.get('preventRefresh');
    if (prevent !== null && prevent !== 'true' && prevent !== 'false') return fail(res, 908, 'preventRefresh');
    t.record.invalidated = true;
    return send(res, 200, { IsPosted: true });
  });

  /** An access token for the account `uid` (what the hosted page hands out). */
  function mint(uid) {
    const t = randomUUID();
    tokens.set(t, { uid, expiresAt: Date.now() + tokenTtlMs, invalidated: false });
    return t;
  }

  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    /** hub_url (the hosted page's base, no trailing slash). */
    hubUrl: base,
    /** api_url (with its trailing slash). */
    apiUrl: `${base}/`,
    calls,
    /**
     * Creates or updates the LoginRadius account `u` ({uid, email, firstName, lastName,
     * fullName?, imageUrl?, emailVerified?}) and makes it the one that signs in next.
     */
    setUser(u) {
      const emails = u.email ? [{ Type: 'Primary', Value: u.email }] : null;
      accounts.set(u.uid, {
        Uid: u.uid, ID: `id-${u.uid}`, Provider: 'Email', FirstName: u.firstName ?? null, LastName: u.lastName ?? null,
        FullName: u.fullName ?? null, Email: emails, ImageUrl: u.imageUrl ?? null, EmailVerified: u.emailVerified ?? true,
        CreatedDate: '2026-01-01T00:00:00.000Z', LastLoginDate: new Date().toISOString(), PhoneId: null, IsActive: true,
      });
      current = u.uid;
    },
    mint,
    /** Whether the API would still accept `t`. */
    isLive(t) { const x = tokens.get(t); return !!x && !x.invalidated && Date.now() <= x.expiresAt; },
    /** Lets every token issued so far run out (vendor-side expiry, without waiting). */
    expireAll() { for (const t of tokens.values()) t.expiresAt = 0; },
    fail(endpoint, mode) { failures.set(endpoint, mode); },
    reset() { failures.clear(); for (const r of held) r.destroy(); held.clear(); },
    callsTo(endpoint) { return calls.filter((c) => c.endpoint === endpoint); },
    close() {
      for (const r of held) r.destroy();
      return new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); });
    },
  };
}
