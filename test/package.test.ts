/**
 * The package as a user gets it: packed with pnpm (which builds dist/), checked with attw, installed with npm into
 * a fresh project next to MikroORM, then a small service is type-checked there and run on two SQLite shards.
 * Needs only the npm registry (or npm's cache: installs prefer it).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npmEnv, pnpm, repoRoot } from './support/tools.ts';

const exec = promisify(execFile);
const LIBRARY = join(repoRoot, 'packages/mikro-orm-sharding');
const FIXTURES = join(repoRoot, 'test/package');
const rootManifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const pinned = rootManifest.devDependencies['@mikro-orm/core']!;
// scripts/test-newest-mikro-orm.ts sets MIKRO_ORM_VERSION to try the newest MikroORM.
const mikroOrm = process.env.MIKRO_ORM_VERSION ?? pinned;
const nodeTypes = rootManifest.devDependencies['@types/node']!;

let work: string;
let project: string;
let tarball: string;

async function run(file: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  try {
    const { stdout } = await exec(file, args, { ...options, timeout: 240_000, maxBuffer: 32 << 20 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${basename(file)} ${args.join(' ')} failed in ${options.cwd}:\n${stdout}\n${stderr}`, { cause: error });
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'mikro-orm-sharding-package-'));
  const [command, ...prefix] = pnpm();
  await run(command!, [...prefix, 'pack', '--pack-destination', work], { cwd: LIBRARY });
  const version = (JSON.parse(readFileSync(join(LIBRARY, 'package.json'), 'utf8')) as { version: string }).version;
  tarball = join(work, `mikro-orm-sharding-${version}.tgz`);

  project = join(work, 'service');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'service', private: true, type: 'module' }, null, 2));
  // What getting-started.md tells a user to run, plus Node's types for the type-check.
  const packages = [tarball, `@mikro-orm/core@${mikroOrm}`, `@mikro-orm/sqlite@${mikroOrm}`, `@types/node@${nodeTypes}`];
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...packages], { cwd: project, env: npmEnv() });
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the build, the README and the LICENSE, and no tests or configs', async () => {
    const files = (await run('tar', ['-tzf', tarball], { cwd: work })).split('\n').filter(Boolean);
    expect(files).toEqual(
      expect.arrayContaining(['package/README.md', 'package/LICENSE', 'package/package.json', 'package/dist/index.js', 'package/dist/index.d.ts']),
    );
    expect(files).toEqual(expect.arrayContaining(['package/dist/merge-api.js', 'package/dist/merge-api.d.ts', 'package/dist/index.js.map']));
    expect(files).toEqual(expect.arrayContaining(['package/dist/testing/index.js', 'package/dist/testing/index.d.ts']));
    expect(files).toEqual(expect.arrayContaining(['package/dist/http/index.js', 'package/dist/http/index.d.ts', 'package/dist/http/fastify.d.ts']));
    expect(files.filter(file => !/^package\/(dist|src)\/|^package\/(README\.md|LICENSE|package\.json)$/.test(file))).toEqual([]);
    expect(readFileSync(join(LIBRARY, 'LICENSE'), 'utf8')).toBe(readFileSync(join(repoRoot, 'LICENSE'), 'utf8'));
  });

  it('is installed with the commands getting-started.md gives', () => {
    const guide = readFileSync(join(repoRoot, 'docs/getting-started.md'), 'utf8');
    const drivers = `@mikro-orm/core@${pinned} @mikro-orm/sqlite@${pinned}`;
    expect(guide).toContain(`npm install mikro-orm-sharding ${drivers}\n`);
    expect(guide).toContain(`cd packages/mikro-orm-sharding && npx -y pnpm@12.21.0 pack `);
    expect(guide).toContain(`npm install /path/to/checkout/packages/mikro-orm-sharding/${basename(tarball)} ${drivers}\n`);
  });

  it('resolves with types for ESM consumers (attw)', async () => {
    const report = await run(join(repoRoot, 'node_modules/.bin/attw'), [tarball, '--profile', 'esm-only', '--format', 'json'], { cwd: work });
    const { analysis } = JSON.parse(report) as { analysis: { problems: unknown[]; entrypoints: Record<string, unknown> } };
    expect(Object.keys(analysis.entrypoints)).toEqual(['.', './merge', './testing', './http', './fastify', './package.json']);
    // esm-only ignores CommonJS `require` (this package is ESM-only) and node10's lack of `exports`.
    const problems = analysis.problems.filter(
      problem =>
        !['CJSResolvesToESM', 'NoResolution'].includes((problem as { kind: string }).kind) ||
        (problem as { resolutionKind?: string }).resolutionKind === 'node16-esm',
    );
    expect(problems).toEqual([]);
  });

  it('runs a service on two SQLite shards', async () => {
    cpSync(join(FIXTURES, 'app.ts'), join(project, 'app.ts'));
    // process.execPath is the pinned Node 24: it strips the types of app.ts, which is not under node_modules.
    const out = await run(process.execPath, ['app.ts'], { cwd: project });
    expect(JSON.parse(out)).toEqual({
      request: { pinned: 's1', authors: 2 },
      titles: ["Ted's book", "Octavia's book"],
      perShard: [1, 2],
      total: 3,
      author: { name: 'Ted', shard: 's1', books: [30] },
      merged: [1, 2, 3, 4],
      refused: 'UNKNOWN_SHARD',
      testShards: 3,
    });
  });

  it('type-checks a service against the published declarations', async () => {
    for (const file of ['app.ts', 'types.ts']) cpSync(join(FIXTURES, file), join(project, file));
    const compilerOptions = {
      target: 'es2024',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      noEmit: true,
      types: ['node'],
      allowImportingTsExtensions: true,
      // MikroORM's own declarations need types a service may not have (pg, better-sqlite3, Temporal): only this
      // package's declarations and the service's files must be free of errors, so every file is checked and
      // the errors inside other packages are left out below.
      skipLibCheck: false,
    };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['app.ts', 'types.ts'] }, null, 2));
    const out = await exec(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json', '--pretty', 'false'], { cwd: project, maxBuffer: 32 << 20 }).then(
      result => result.stdout,
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    const ours = out
      .split('\n')
      .filter(line => /^[^\s(]+\(\d+,\d+\): error/.test(line) && (!line.startsWith('node_modules/') || line.startsWith('node_modules/mikro-orm-sharding/')));
    expect(ours).toEqual([]);
  });

  it('names a second copy of MikroORM instead of calling the driver unsupported', async () => {
    // What a `file:` link to a checkout gives: the library resolves @mikro-orm/* from its own node_modules.
    const nested = join(project, 'node_modules/mikro-orm-sharding/node_modules/@mikro-orm');
    mkdirSync(nested, { recursive: true });
    for (const pkg of ['core', 'sql']) cpSync(join(project, 'node_modules/@mikro-orm', pkg), join(nested, pkg), { recursive: true });
    writeFileSync(
      join(project, 'copies.ts'),
      [
        "import { SqliteDriver } from '@mikro-orm/sqlite';",
        "import { ShardedMikroORM, ShardingError } from 'mikro-orm-sharding';",
        "const error = await ShardedMikroORM.init({ driver: SqliteDriver, shards: { s0: { dbName: ':memory:' } }, shardChooser: () => 's0' }).catch(e => e);",
        'console.log(JSON.stringify({ sharding: error instanceof ShardingError, code: error.code, shard: error.shard, message: error.message }));',
      ].join('\n'),
    );
    try {
      const error = JSON.parse(await run(process.execPath, ['copies.ts'], { cwd: project })) as Record<string, string>;
      expect(error).toMatchObject({ sharding: true, code: 'UNSUPPORTED_DRIVER', shard: 's0' });
      expect(error.message).toContain('Two copies of @mikro-orm/core');
      expect(error.message).toContain('and of @mikro-orm/sql');
      expect(error.message).toContain(`${join(project, 'node_modules/mikro-orm-sharding/node_modules/@mikro-orm/core')}`);
      expect(error.message).toContain('shard "s0"\'s driver SqliteDriver');
      expect(error.message).toContain('npm dedupe');
    } finally {
      rmSync(join(project, 'node_modules/mikro-orm-sharding/node_modules'), { recursive: true, force: true });
    }
  });
});
