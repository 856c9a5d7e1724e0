/**
 * MikroORM's own CLI (`@mikro-orm/cli`) on a sharding config: a project whose `mikro-orm.config.ts` exports
 * `shardConfigsForCli(...)`, two SQLite shards, and the real `mikro-orm` command picking a shard with `--context`.
 *
 * The command runs as `node node_modules/@mikro-orm/cli/cli.js` (what the `mikro-orm` bin is) on the pinned Node 24,
 * not through `pnpm exec`: pnpm 12 installs a project before running its bin, and this project's node_modules is a
 * link to the repository's. Node 24 loads the TypeScript config itself (type stripping); MikroORM's CLI is told
 * where it is with MIKRO_ORM_CLI_CONFIG, as docs/operations.md says.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defineEntity, p } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { ShardedMikroORM, shardConfigsForCli } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npmEnv, repoRoot } from './support/tools.ts';

const exec = promisify(execFile);
const CLI = join(repoRoot, 'node_modules/@mikro-orm/cli/cli.js');
let project: string;

async function mikroOrm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...npmEnv(), MIKRO_ORM_CLI_CONFIG: './mikro-orm.config.ts', NO_COLOR: '1', FORCE_COLOR: '0' };
  // The condition makes `mikro-orm-sharding` resolve to its TypeScript source, as everywhere in this suite.
  return exec(process.execPath, ['--conditions=@mikro-orm-sharding/source', CLI, ...args], { cwd: project, env, timeout: 60_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
  );
}

/** The same fleet, opened by the test to see what the CLI did. */
async function openFleet(): Promise<ShardedMikroORM> {
  const schema = defineEntity({ name: 'Note', properties: { id: p.integer().primary(), title: p.string() } });
  class Note extends schema.class {}
  schema.setClass(Note);
  return ShardedMikroORM.init({
    driver: SqliteDriver,
    baseDir: project,
    entities: [Note],
    extensions: [Migrator],
    migrations: { path: './migrations', silent: true },
    shards: { s1: { dbName: join(project, 's1.db') }, s2: { dbName: join(project, 's2.db') } },
    shardChooser: () => 's1',
  });
}

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'mos-cli-'));
  symlinkSync(join(repoRoot, 'node_modules'), join(project, 'node_modules'), 'dir');
  // MikroORM's CLI wants itself as a local dependency, and every @mikro-orm/* package at core's version.
  const version = '7.2.1';
  const devDependencies = Object.fromEntries(['cli', 'core', 'sqlite', 'migrations'].map(name => [`@mikro-orm/${name}`, version]));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'cli-project', private: true, type: 'module', devDependencies }, null, 2));
  writeFileSync(
    join(project, 'entities.ts'),
    `import { defineEntity, p } from '@mikro-orm/core';
const NoteSchema = defineEntity({ name: 'Note', properties: { id: p.integer().primary(), title: p.string() } });
export class Note extends NoteSchema.class {}
NoteSchema.setClass(Note);
`,
  );
  writeFileSync(
    join(project, 'mikro-orm.config.ts'),
    `import { Migrator } from '@mikro-orm/migrations';
import { SqliteDriver } from '@mikro-orm/sqlite';
import { defineShardingConfig, shardConfigsForCli } from 'mikro-orm-sharding';
import { Note } from './entities.ts';

export default shardConfigsForCli(
  defineShardingConfig({
    driver: SqliteDriver,
    entities: [Note],
    extensions: [Migrator],
    migrations: { path: './migrations' },
    shards: { s1: { dbName: 's1.db' }, s2: { dbName: 's2.db' } },
    shardChooser: () => 's1',
  }),
);
`,
  );
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('shardConfigsForCli', () => {
  it('gives one config per shard, contextName = shard id, merged as ShardedMikroORM.init() merges them', () => {
    const configs = shardConfigsForCli({
      driver: SqliteDriver,
      entities: [],
      debug: true,
      shards: { a: { dbName: 'a.db' }, b: { dbName: 'b.db', debug: false } },
      shardChooser: () => 'a',
    });
    expect(configs.slice(0, 2)).toEqual([
      // Each shard's logger names it, in the CLI's output too.
      { driver: SqliteDriver, entities: [], debug: true, dbName: 'a.db', contextName: 'a', loggerFactory: expect.any(Function) },
      { driver: SqliteDriver, entities: [], debug: false, dbName: 'b.db', contextName: 'b', loggerFactory: expect.any(Function) },
    ]);
    const other = configs[2];
    expect(typeof other).toBe('function');
    expect(() => (other as (name: string) => unknown)('default')).toThrow(/pick a shard with --context \(one of a, b\); got "default"/);
  });

  it('refuses an invalid sharding config as ShardedMikroORM.init() does', () => {
    expect(() => shardConfigsForCli({ driver: SqliteDriver, shards: {}, shardChooser: () => 'a' })).toThrow(expect.objectContaining({ code: 'NO_SHARDS' }));
  });
});

describe("MikroORM's CLI with a sharding config", () => {
  it('schema:update --dump --context s1 prints the SQL for shard s1', async () => {
    const result = await mikroOrm('schema:update', '--dump', '--context', 's1');
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/create table `note`/);
  });

  it('migration:create --context s1 writes a migration; migration:up --context s2 runs it on s2 only', async () => {
    const created = await mikroOrm('migration:create', '--context', 's1', '--name', 'notes');
    expect(created.code).toBe(0);
    const files = readdirSync(join(project, 'migrations')).filter(file => file.endsWith('.ts'));
    expect(files).toEqual([expect.stringMatching(/^Migration\d{14}_notes\.ts$/)]);
    const name = files[0]!.replace(/\.ts$/, '');

    const up = await mikroOrm('migration:up', '--context', 's2');
    expect(up.code).toBe(0);

    await using orm = await openFleet();
    const status = await orm.migrator.status();
    expect(status.shards.map(s => [s.shard, s.executed, s.pending])).toEqual([
      ['s1', [], [name]],
      ['s2', [name], []],
    ]);
    expect(status.drift).toHaveLength(1);

    const list = await mikroOrm('migration:pending', '--context', 's1');
    expect(list.stdout).toContain(name);
  });

  it('without --context it fails naming the shards to pick from', async () => {
    const result = await mikroOrm('schema:update', '--dump');
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/pick a shard with --context \(one of s1, s2\); got "default"/);
  });
});
