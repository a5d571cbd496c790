// A real, certified OpenID Connect provider (the npm `oidc-provider` package) on loopback,
// with in-memory storage and its built-in dev login page (any name, any password).
// Used by `scripts/dev` (run as a program) and by the integration tests (imported).
import Provider from 'oidc-provider';

/**
 * Starts the provider. `clients` are oidc-provider client metadata objects. `intercept(req,
 * res)`, when given, sees every request first and returns true when it answered it itself
 * (tests use it to make an endpoint fail, or to rewrite what the provider answers).
 * `claimsFor(id)`, when given, returns claims that replace the defaults for the account `id`
 * (e.g. `{ email: 'x@corp.example', email_verified: false }`); it is asked at every sign-in,
 * so a test can change an account's email between two sign-ins.
 * Returns { issuer, close() }.
 */
export async function startOidcProvider({ port = 0, host = '127.0.0.1', clients, intercept, claimsFor }) {
  const { createServer } = await import('node:http');
  const server = createServer();
  await new Promise((resolve) => server.listen(port, host, resolve));
  const issuer = `http://${host}:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // The account id is what the person typed on the dev login page.
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: `${id}@example.test`, email_verified: true, name: `User ${id}`, ...claimsFor?.(id) }),
    }),
    cookies: { keys: ['gatehouse-local-dev-only'] },
    ttl: { Session: 600, Interaction: 600, Grant: 600 },
  });
  provider.proxy = false;
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  // Quiet: the dev-keys warning is expected here.
  const handle = provider.callback();
  server.on('request', (req, res) => { if (!intercept?.(req, res)) handle(req, res); });
  return {
    issuer,
    provider,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

// `node tests/support/oidc-provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI`
if (import.meta.url === `file://${process.argv[1]}`) {
  const [port, clientId, secret, redirect] = process.argv.slice(2);
  const { issuer } = await startOidcProvider({
    port: Number(port),
    clients: [{ client_id: clientId, client_secret: secret, redirect_uris: [redirect], token_endpoint_auth_method: 'client_secret_basic' }],
  });
  console.log(`local OpenID Connect provider on ${issuer} (sign in with any name and password)`);
}
