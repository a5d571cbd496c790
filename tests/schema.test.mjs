// `schema.sql` is the whole schema, and `migrations/` (as `wrangler d1 migrations apply`
// runs them) must give exactly it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/harness.mjs';

const run = promisify(execFile);
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const ENV = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' };
const MASTER = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' ORDER BY type, name";

async function schemaOf(dir, apply) {
  const config = join(dir, 'wrangler.json');
  await writeFile(config, JSON.stringify({
    name: 'schema-check', compatibility_date: '2026-04-01',
    d1_databases: [{ binding: 'DB', database_name: 'gatehouse', database_id: '00000000-0000-0000-0000-000000000000', migrations_dir: join(ROOT, 'migrations') }],
  }));
  const common = ['--local', '--config', config, '--persist-to', join(dir, 'state')];
  await run(WRANGLER, ['d1', ...apply, ...common], { env: ENV, cwd: dir });
  const out = JSON.parse((await run(WRANGLER, ['d1', 'execute', 'DB', '--command', MASTER, '--json', ...common], { env: ENV, cwd: dir })).stdout);
  // Normalise whitespace so that formatting differences do not count, content does.
  return out[0].results.map((r) => ({ ...r, sql: r.sql?.replace(/\s+/g, ' ').trim() }));
}

test('migrations give exactly schema.sql', async () => {
  const a = await mkdtemp(join(tmpdir(), 'gh-schema-a-'));
  const b = await mkdtemp(join(tmpdir(), 'gh-schema-b-'));
  try {
    const migrated = await schemaOf(a, ['migrations', 'apply', 'DB']);
    const declared = await schemaOf(b, ['execute', 'DB', '--file', join(ROOT, 'schema.sql')]);
    assert.ok(declared.some((r) => r.name === 'identities'), 'schema.sql creates identities');
    assert.deepEqual(migrated, declared);
  } finally {
    await rm(a, { recursive: true, force: true });
    await rm(b, { recursive: true, force: true });
  }
});
