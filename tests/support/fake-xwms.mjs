// A local stand-in for the XWMS login API (docs/vendors.md, "XWMS"), on
// loopback, for the integration tests. It implements what Gatehouse relies on, with XWMS's
// success and error shapes, and checks its input the way the vendor does:
//
//   POST {base}sign-token        {client_id, domain, client_secret, redirect_url}
//        → {"status":"success","data":{"url": "<login page>"}}
//   GET  <login page>            the hosted login: signs in the user chosen with setUser()
//        and sends the browser to redirect_url?token=<token>
//   POST {base}sign-token-verify {token, client_id, domain, client_secret}
//        → {"status":"success","message":…,"data":{sub, name, given_name, family_name,
//           email, picture}}; any other status means invalid or expired.
//
// Tokens belong to one client, are single use and expire (tokenTtlMs). Errors are
// {"status":"error","message":…} with a 4xx. fail(endpoint, mode) makes one endpoint
// misbehave: 'hold' (never answers until the fake closes: longer than any client timeout),
// 'http500', 'malformed' (cut-off JSON), or {status, body} (any answer).
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

const token = () => randomBytes(24).toString('base64url');

export async function startFakeXwms({ clientId, clientSecret, domain, tokenTtlMs = 5 * 60_000 }) {
  const logins = new Map(); // login id → { redirectUrl, clientId, used }
  const tokens = new Map(); // token → { user, clientId, expiresAt, used }
  const failures = new Map(); // endpoint → mode
  const held = new Set();
  const calls = [];
  let user = null;

  const send = (res, status, body) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(text);
  };
  const error = (res, status, message) => send(res, status, { status: 'error', message });

  async function readJson(req) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString('utf8');
    try { return JSON.parse(raw); } catch { return undefined; }
  }

  /** XWMS checks the client on every API call: id, domain and secret must all match. */
  function clientError(res, body) {
    if (!body || typeof body !== 'object') return error(res, 400, 'The request body must be JSON.'), true;
    for (const f of ['client_id', 'domain', 'client_secret']) {
      if (typeof body[f] !== 'string' || body[f] === '') return error(res, 422, `The ${f} field is required.`), true;
    }
    if (body.client_id !== clientId || body.domain !== domain || body.client_secret !== clientSecret) {
      return error(res, 401, 'Invalid client credentials.'), true;
    }
    return false;
  }

  /** Applies a configured failure; returns true when it answered (or is holding). */
  function misbehave(endpoint, res) {
    const mode = failures.get(endpoint);
    if (!mode) return false;
    if (mode === 'hold') { held.add(res); res.on('close', () => held.delete(res)); return true; }
    if (mode === 'http500') return send(res, 500, '<html><body>Server Error</body></html>'), true;
    if (mode === 'malformed') return send(res, 200, '{"status":"success","data":{"sub":'), true;
    return send(res, mode.status, mode.body), true;
  }

  const server = createServer(async (req, res) => {
    // A fresh connection per call: no keep-alive race between the Worker's connection pool
    // and this server closing idle sockets (a reset would look like a vendor outage).
    res.setHeader('connection', 'close');
    const url = new URL(req.url, base);
    const path = url.pathname;
    try {
      if (req.method === 'POST' && path === '/sign-token') {
        const body = await readJson(req);
        calls.push({ endpoint: 'sign-token', body });
        if (misbehave('sign-token', res) || clientError(res, body)) return;
        let redirect;
        try { redirect = new URL(body.redirect_url); } catch { /* below */ }
        if (!redirect || !/^https?:$/.test(redirect.protocol)) return error(res, 422, 'The redirect_url field must be a valid URL.');
        const id = token();
        logins.set(id, { redirectUrl: body.redirect_url, clientId: body.client_id, used: false });
        return send(res, 200, { status: 'success', message: 'Sign token created', data: { url: `${base}login/${id}` } });
      }
      if (req.method === 'GET' && path.startsWith('/login/')) {
        const login = logins.get(path.slice('/login/'.length));
        calls.push({ endpoint: 'login', login: path.slice('/login/'.length) });
        if (!login || login.used) return send(res, 404, { status: 'error', message: 'This login link is invalid or expired.' });
        if (!user) return send(res, 409, { status: 'error', message: 'fake-xwms: no user set (call setUser)' });
        login.used = true;
        const t = mint(user, login.clientId);
        // As documented: `redirect_url?token=<token>`, by plain concatenation (a
        // redirect_url that has a query of its own gets a second `?`).
        res.writeHead(302, { location: `${login.redirectUrl}?token=${encodeURIComponent(t)}` });
        return res.end();
      }
      if (req.method === 'POST' && path === '/sign-token-verify') {
        const body = await readJson(req);
        calls.push({ endpoint: 'sign-token-verify', body });
        if (misbehave('sign-token-verify', res) || clientError(res, body)) return;
        if (typeof body.token !== 'string' || body.token === '') return error(res, 422, 'The token field is required.');
        const t = tokens.get(body.token);
        if (!t || t.used || t.clientId !== body.client_id || Date.now() > t.expiresAt) {
          return error(res, 400, 'Invalid or expired token.');
        }
        t.used = true;
        return send(res, 200, { status: 'success', message: 'Successful authenticated', data: t.user });
      }
      return send(res, 404, { status: 'error', message: 'Not found.' });
    } catch (e) {
      if (!res.headersSent) send(res, 500, { status: 'error', message: String(e) });
    }
  });

  /** Mints a login token for `u` (what the hosted page does after a sign-in). */
  function mint(u, forClient = clientId) {
    const t = token();
    tokens.set(t, { user: { ...u }, clientId: forClient, expiresAt: Date.now() + tokenTtlMs, used: false });
    return t;
  }

  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}/`;
  return {
    /** The API base (`api_url`), with its trailing slash. */
    url: base,
    calls,
    /** The XWMS account that signs in at the login page from now on. */
    setUser(u) { user = { ...u }; },
    mint,
    /** Whether `t` would still verify. */
    isLive(t) { const x = tokens.get(t); return !!x && !x.used && Date.now() <= x.expiresAt; },
    /** Lets every token minted so far run out (vendor-side expiry, without waiting). */
    expireAll() { for (const t of tokens.values()) t.expiresAt = 0; },
    fail(endpoint, mode) { failures.set(endpoint, mode); },
    reset() { failures.clear(); for (const r of held) r.destroy(); held.clear(); },
    /** Calls to one endpoint since the start. */
    callsTo(endpoint) { return calls.filter((c) => c.endpoint === endpoint); },
    close() {
      for (const r of held) r.destroy();
      return new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); });
    },
  };
}
