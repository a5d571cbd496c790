// Bad configuration is one clear log line and a 500 naming the setting, never a panic: the
// isolate keeps answering (a panic would leave it hanging).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGatehouse, baseSecrets } from './support/harness.mjs';

const PROVIDERS = { dev: { kind: 'oidc', issuer: 'http://127.0.0.1:9', client_id: 'c' } };
const SECRETS = { ...baseSecrets(), PROVIDER_DEV_SECRET: 's' };

async function expectConfigError({ vars, secrets }, setting) {
  const gh = await startGatehouse({ vars, secrets });
  try {
    const mark = gh.mark();
    for (let i = 0; i < 2; i++) { // the second request proves the isolate survived
      const api = await fetch(`${gh.url}/auth/me`);
      assert.equal(api.status, 500);
      const body = await api.json();
      assert.equal(body.error, 'configuration_error');
      assert.ok(body.message.includes(setting), `message names ${setting}: ${body.message}`);
    }
    const page = await fetch(`${gh.url}/auth/login`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 500);
    assert.ok((await page.text()).includes(setting));
    assert.equal((await fetch(`${gh.url}/healthz`)).status, 200, 'liveness does not depend on config');
    assert.ok(await gh.waitForLog(new RegExp(`configuration error: ${setting}`), { since: mark }), `log names ${setting}:\n${gh.logs()}`);
    assert.doesNotMatch(gh.logs(), /panicked/);
  } finally {
    await gh.stop();
  }
}

test('missing PUBLIC_URL', async () => {
  await expectConfigError({ vars: { PUBLIC_URL: null, PROVIDERS }, secrets: SECRETS }, 'PUBLIC_URL');
});

test('malformed PROVIDERS', async () => {
  await expectConfigError({ vars: { PROVIDERS: '{"dev": {"kind": "oidc", ' }, secrets: SECRETS }, 'PROVIDERS');
});

test('bad SIGNING_KEYS', async () => {
  await expectConfigError({ vars: { PROVIDERS }, secrets: { ...SECRETS, SIGNING_KEYS: '[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]' } }, 'SIGNING_KEYS');
});
