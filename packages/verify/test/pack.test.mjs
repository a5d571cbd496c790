// `npm pack` gives a tarball that installs into an empty project and imports, both entry
// points, with only jose coming along (from npm's cache: no network needed once installed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('npm pack → npm install → import', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-verify-pack-'));
  try {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG });
    const [info] = JSON.parse(stdout);
    const files = info.files.map((f) => f.path).sort();
    assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('dist/hono.js'), files.join(' '));
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'only the build goes in');
    console.log(`# tarball ${info.filename}: ${info.size} B packed, ${info.unpackedSize} B unpacked, ${files.length} files`);

    const app = join(dir, 'app');
    await run('mkdir', ['-p', app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, info.filename)], { cwd: app });
    assert.deepEqual((await readdir(join(app, 'node_modules'))).sort(), ['.package-lock.json', '@gatehouse', 'jose'], 'jose is the only dependency');
    await writeFile(join(app, 'check.mjs'), `
      import { createVerifier, tokenFromRequest, GatehouseVerifyError } from '@gatehouse/verify';
      import { gatehouse } from '@gatehouse/verify/hono';
      const v = createVerifier({ issuer: 'https://login.example', audience: 'https://login.example', fetch: async () => Response.json({ keys: [] }) });
      const code = await v.verify('a.b.c').catch((e) => e instanceof GatehouseVerifyError && e.code);
      console.log(JSON.stringify({ code, hono: typeof gatehouse(v), token: tokenFromRequest(new Request('https://x/', { headers: { authorization: 'Bearer t' } })) }));
    `);
    const out = await run('node', ['check.mjs'], { cwd: app });
    assert.deepEqual(JSON.parse(out.stdout), { code: 'malformed', hono: 'function', token: 't' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
