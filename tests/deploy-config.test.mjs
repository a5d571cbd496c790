// Deployment hygiene: `wrangler.toml` is the production configuration. A plain
// `wrangler deploy` must not ship development settings (a loopback PUBLIC_URL, the local
// provider), must not bind placeholder resource ids, and keeps Workers Logs on; the dev
// command's own settings (kept in scripts/dev) must be a valid configuration. The file is read
// with wrangler's own config reader, so what is checked is what wrangler would deploy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unstable_readConfig } from 'wrangler';
import { startGatehouse, baseSecrets, freePort, ROOT } from './support/harness.mjs';

const config = unstable_readConfig({ config: join(ROOT, 'wrangler.toml') });
const LOOPBACK = /127\.0\.0\.1|localhost|\[::1\]/i;

test('wrangler.toml vars carry no development setting', () => {
  const vars = JSON.stringify(config.vars);
  assert.doesNotMatch(vars, LOOPBACK, `production [vars] point at a local machine: ${vars}`);
  assert.equal(config.vars.PUBLIC_URL, undefined, 'PUBLIC_URL is the operator\'s to set');
  assert.equal(config.vars.PROVIDERS, undefined, 'PROVIDERS is the operator\'s to set');
});

test('wrangler.toml binds no placeholder resource id', () => {
  const ids = [
    ...config.d1_databases.map((d) => d.database_id),
    ...config.kv_namespaces.map((k) => k.id),
  ];
  assert.ok(config.d1_databases.some((d) => d.binding === 'DB'));
  assert.ok(config.kv_namespaces.some((k) => k.binding === 'SESSIONS'));
  for (const id of ids) {
    // Absent: wrangler provisions the resource at the first deploy. Present: a real id.
    if (id !== undefined) assert.doesNotMatch(id, /^[0-]+$/, `placeholder id ${id}`);
  }
});

test('Workers Logs are on', () => {
  assert.equal(config.observability?.enabled, true);
});

test('deployed with wrangler.toml alone, Gatehouse names the missing setting instead of serving dev settings', async () => {
  const gh = await startGatehouse({ vars: { ...config.vars, PUBLIC_URL: null } });
  try {
    const res = await fetch(`${gh.url}/auth/login`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.error, 'configuration_error');
    assert.match(body.message, /PUBLIC_URL|PROVIDERS/);
    assert.equal((await fetch(`${gh.url}/healthz`)).status, 200);
  } finally {
    await gh.stop();
  }
});

test('the dev command\'s settings are a valid configuration with the local provider', async () => {
  const script = await readFile(join(ROOT, 'scripts', 'dev'), 'utf8');
  const providers = script.match(/^DEV_PROVIDERS='(.*)'$/m)?.[1];
  assert.ok(providers, 'scripts/dev defines DEV_PROVIDERS');
  assert.match(script, /--var "PROVIDERS:\$DEV_PROVIDERS"/);
  // localhost, not 127.0.0.1: browsers refuse an IP address as a passkey's RP ID.
  assert.match(script, /--var "PUBLIC_URL:http:\/\/localhost:8787"/);
  const port = await freePort();
  const gh = await startGatehouse({
    port,
    vars: { ...config.vars, PUBLIC_URL: `http://localhost:${port}`, PROVIDERS: providers },
    secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: 'dev-secret' },
  });
  try {
    const page = await fetch(`${gh.url}/auth/login`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Local dev provider/);
    assert.match(html, /Sign in with a passkey/);
  } finally {
    await gh.stop();
  }
});
