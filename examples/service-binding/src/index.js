// An app Worker next to Gatehouse, bound to it with a service binding (env.GATEHOUSE).
//   /auth/*, /.well-known/*  handed to Gatehouse through the binding (sign-in on this host)
//   GET /api/me-remote       asks Gatehouse's /auth/me through the binding: no public hop
//   GET /api/me-local        verifies the access token here, with @gatehouse/verify; the JWKS
//                            comes through the binding too, once, then from the cache
import { createVerifier, withGatehouse } from '@gatehouse/verify';

// One verifier per isolate: it holds the cached JWKS.
let verifier;
const verifierFor = (env) => (verifier ??= createVerifier({
  issuer: env.GATEHOUSE_ISSUER,
  audience: env.GATEHOUSE_ISSUER,
  fetch: (url, init) => env.GATEHOUSE.fetch(url, init),
}));

const meLocal = withGatehouse(verifierFor, (_request, _env, _ctx, user) =>
  Response.json({ id: user.sub, email: user.email, session_id: user.sid, verified: 'locally', jwks_fetches: verifier.jwksFetches }));

async function meRemote(request, env) {
  // Only the credentials go along; Gatehouse answers from the access token alone, or renews
  // it from the session (its Set-Cookie is passed back to the browser).
  const headers = new Headers();
  for (const name of ['cookie', 'authorization']) {
    const value = request.headers.get(name);
    if (value) headers.set(name, value);
  }
  const answer = await env.GATEHOUSE.fetch(`${env.GATEHOUSE_ISSUER}/auth/me`, { headers });
  const response = new Response(answer.body, answer);
  response.headers.set('x-answered-by', 'gatehouse via service binding');
  return response;
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith('/auth/') || pathname.startsWith('/.well-known/')) return env.GATEHOUSE.fetch(request);
    if (pathname === '/api/me-remote') return meRemote(request, env);
    if (pathname === '/api/me-local') return meLocal(request, env, ctx);
    return new Response('Gatehouse example app: try /auth/login, /api/me-remote, /api/me-local\n', { headers: { 'content-type': 'text/plain' } });
  },
};
