// Key rotation (README "Key rotation"): publish the new key first, sign with it later, retire
// the old one after the access TTL — sessions stay alive throughout. Gatehouse is restarted
// over the same D1 and KV with each step's SIGNING_KEYS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { decode, thumbprint } from './support/jwt.mjs';

const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

test('rotation keeps sessions alive', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'gh-rotation-'));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
  cleanups.push(() => idp.close());
  const [A, B] = [newSigningKey(), newSigningKey()];
  const fixed = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  const vars = { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } } };
  const step = async (keys, fn) => {
    const gh = await startGatehouse({ port, stateDir, vars, secrets: { ...fixed, SIGNING_KEYS: JSON.stringify(keys) } });
    try { return await fn(gh); } finally { await gh.stop(); }
  };
  const kidsOf = async (gh) => (await (await fetch(`${gh.url}/.well-known/jwks.json`)).json()).keys.map((k) => k.kid);
  const meWith = (gh, cookies) => fetch(`${gh.url}/auth/me`, { headers: { cookie: cookies } });
  const renewedKid = (r) => {
    const c = r.headers.getSetCookie().find((x) => x.startsWith('gh_access='));
    return c && decode(c.split(';')[0].slice('gh_access='.length)).header.kid;
  };

  // 0. Only A: sign in.
  const browser = new Client();
  const { tokenA, session, userId } = await step([A], async (gh) => {
    await oidcSignIn(browser, gh.url, { login: 'rita' });
    const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
    return { tokenA: browser.cookie(gh.url, 'gh_access'), session: browser.cookie(gh.url, 'gh_session'), userId: me.id };
  });
  assert.equal(decode(tokenA).header.kid, thumbprint(A));

  // 1. Publish B, A still signs.
  await step([A, B], async (gh) => {
    assert.deepEqual(await kidsOf(gh), [thumbprint(A), thumbprint(B)]);
    assert.equal((await meWith(gh, `gh_access=${tokenA}`)).status, 200);
    assert.equal(renewedKid(await meWith(gh, `gh_session=${session}`)), thumbprint(A));
  });

  // 2. B signs, A still published: A's tokens stay valid, renewals come from B.
  await step([B, A], async (gh) => {
    const r = await meWith(gh, `gh_access=${tokenA}`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).id, userId);
    assert.equal(renewedKid(await meWith(gh, `gh_session=${session}`)), thumbprint(B));
  });

  // 3. A retired (after the access TTL): A's token is refused, but the session renews with B.
  await step([B], async (gh) => {
    assert.deepEqual(await kidsOf(gh), [thumbprint(B)]);
    const bare = await fetch(`${gh.url}/auth/me`, { headers: { authorization: `Bearer ${tokenA}` } });
    assert.equal(bare.status, 401);
    const r = await meWith(gh, `gh_access=${tokenA}; gh_session=${session}`);
    assert.equal(r.status, 200, 'the session survived the rotation');
    assert.equal((await r.json()).id, userId);
    assert.equal(renewedKid(r), thumbprint(B));
  });
});
