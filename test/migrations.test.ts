/**
 * `orm.migrator`: MikroORM's migrator on every shard, on SQLite and PostgreSQL. Migrations are real files that
 * MikroORM generates and imports; what ran where is checked in each shard's `mikro_orm_migrations` table and schema.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, p, TableExistsException } from '@mikro-orm/core';
import { Migration, Migrator } from '@mikro-orm/migrations';
import { ShardedMigrationError, ShardedMikroORM, ShardingError, type ShardOptions } from 'mikro-orm-sharding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topologies, type Topology } from './support/topology.ts';
import { repoRoot } from './support/tools.ts';

/** Version 1 of the model, and version 2 with one more column: what a schema change between releases looks like. */
function noteEntity(version: 1 | 2) {
  const schema = defineEntity({
    name: 'Note',
    properties: {
      id: p.integer().primary().autoincrement(false),
      title: p.string(),
      ...(version === 2 ? { body: p.string().nullable() } : {}),
    },
  });
  class Note extends schema.class {}
  schema.setClass(Note);
  return Note;
}

const IDS = ['s0', 's1', 's2'];

/** A folder for migration files that can import `@mikro-orm/migrations`, as a project's own folder does. */
function migrationsRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'mos-migrations-'));
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
  writeFileSync(join(root, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  return root;
}

describe.each(['sqlite', 'postgresql'] as const)('orm.migrator on %s', driver => {
  let topology: Topology;
  let root: string;
  let shards: Record<string, ShardOptions>;
  const open: ShardedMikroORM[] = [];

  async function fleet(version: 1 | 2, path = join(root, 'migrations'), fleetShards = shards): Promise<ShardedMikroORM> {
    const orm = await ShardedMikroORM.init({
      ...topology.shared,
      entities: [noteEntity(version)],
      extensions: [Migrator],
      migrations: { path, silent: true },
      shards: fleetShards,
      shardChooser: () => 's0',
    });
    open.push(orm);
    return orm;
  }

  async function tables(orm: ShardedMikroORM, id: string): Promise<string[]> {
    const sql =
      driver === 'sqlite'
        ? `select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`
        : `select table_name as name from information_schema.tables where table_schema = 'public' order by table_name`;
    const rows: { name: string }[] = await orm.shard(id).em.fork().getConnection().execute(sql);
    return rows.map(row => row.name);
  }

  async function columns(orm: ShardedMikroORM, id: string, table: string): Promise<string[]> {
    const sql =
      driver === 'sqlite'
        ? `select name from pragma_table_info('${table}') order by name`
        : `select column_name as name from information_schema.columns where table_name = '${table}' order by column_name`;
    const rows: { name: string }[] = await orm.shard(id).em.fork().getConnection().execute(sql);
    return rows.map(row => row.name);
  }

  beforeAll(() => {
    topology = topologies[driver]();
    shards = topology.shards(IDS.length);
    root = migrationsRoot();
  });

  afterAll(async () => {
    await Promise.all(open.map(orm => orm.close(true)));
    await topology?.dispose();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('creates one migration from the reference shard, then up, pending, executed and status on every shard', async () => {
    const orm = await fleet(1);
    const [created, ...others] = await orm.migrator.create({ name: 'notes' });
    expect(others).toEqual([]);
    expect(created).toMatchObject({ reference: 's0', source: join(root, 'migrations'), shards: IDS });
    expect(created!.fileName).toMatch(/^Migration\d{14}_notes\.ts$/);
    expect(created!.diff.up.join('\n')).toMatch(/create table [`"]note[`"]/);
    expect(readdirSync(join(root, 'migrations'))).toContain(created!.fileName);
    const name = created!.fileName.replace(/\.ts$/, '');
    // Creating ran nothing anywhere.
    for (const id of IDS) expect(await tables(orm, id)).not.toContain('note');

    const pending = await orm.migrator.pending();
    expect([...pending.keys()]).toEqual(IDS);
    for (const id of IDS) expect(pending.get(id)!.map(m => m.name)).toEqual([name]);
    const before = await orm.migrator.status();
    expect(before.upToDate).toBe(false);
    expect(before.drift).toEqual([]);

    const report = await orm.migrator.up();
    expect(report.map(({ shard, status, migrations }) => ({ shard, status, migrations }))).toEqual(
      IDS.map(shard => ({ shard, status: 'done', migrations: [name] })),
    );
    for (const r of report) expect(r.ms).toBeGreaterThanOrEqual(0);
    for (const id of IDS) expect(await tables(orm, id)).toContain('note');
    const executed = await orm.migrator.executed();
    for (const id of IDS) expect(executed.get(id)!.map(row => row.name)).toEqual([name]);

    const after = await orm.migrator.status();
    expect(after).toMatchObject({ upToDate: true, drift: [] });
    expect(after.shards.map(s => [s.shard, s.last, s.pending])).toEqual(IDS.map(id => [id, name, []]));
    expect(after.summary).toBe(`${join(root, 'migrations')}: s0, s1, s2 at ${name}; nothing pending.`);

    // A second run has nothing to do on any shard.
    expect((await orm.migrator.up()).map(r => r.migrations)).toEqual([[], [], []]);
    await orm.close(true);
  });

  it('flags drift after a migration ran on some shards only, naming them; up on all resumes it', async () => {
    const orm = await fleet(2);
    const [created] = await orm.migrator.create({ name: 'note_body' });
    expect(created!.diff.up.join('\n')).toMatch(/add (column )?[`"]body[`"]/);
    const name = created!.fileName.replace(/\.ts$/, '');

    const partial = await orm.migrator.up({ shards: ['s1'] });
    expect(partial.map(r => [r.shard, r.migrations])).toEqual([['s1', [name]]]);
    expect(await columns(orm, 's1', 'note')).toContain('body');
    expect(await columns(orm, 's0', 'note')).not.toContain('body');

    const status = await orm.migrator.status();
    expect(status.upToDate).toBe(false);
    expect(status.drift).toHaveLength(1);
    expect(status.drift[0]!.groups.map(g => [g.last, g.shards])).toEqual([
      [name, ['s1']],
      [expect.stringMatching(/_notes$/), ['s0', 's2']],
    ]);
    expect(status.summary).toMatch(new RegExp(`DRIFT: s1 at ${name}; s0, s2 at Migration\\d+_notes\\. Pending on s0 \\(1\\), s2 \\(1\\)\\.`));

    const report = await orm.migrator.up({ concurrency: 2 });
    expect(report.map(r => [r.shard, r.migrations])).toEqual([
      ['s0', [name]],
      ['s1', []],
      ['s2', [name]],
    ]);
    expect((await orm.migrator.status()).drift).toEqual([]);
    for (const id of IDS) expect(await columns(orm, id, 'note')).toContain('body');

    // down reverts the last migration on each shard, and reports it.
    const down = await orm.migrator.down();
    expect(down.map(r => [r.shard, r.migrations])).toEqual(IDS.map(id => [id, [name]]));
    for (const id of IDS) expect(await columns(orm, id, 'note')).not.toContain('body');
    expect([...(await orm.migrator.pending()).values()].map(list => list.map(m => m.name))).toEqual([[name], [name], [name]]);
    await orm.migrator.up();
    await orm.close(true);
  });

  it('stops at a shard whose migration fails: names it and the migration, keeps the cause, starts no other shard; a re-run resumes', async () => {
    const orm = await fleet(2);
    const folder = join(root, 'migrations');
    const name = 'Migration29990101000000_tags';
    writeFileSync(
      join(folder, `${name}.ts`),
      `import { Migration } from '@mikro-orm/migrations';
export class ${name} extends Migration {
  override up(): void {
    this.addSql('create table "tag" ("id" integer not null primary key, "label" varchar(255) not null)');
    this.addSql('insert into "tag" ("id", "label") values (1, \\'first\\')');
  }
  override down(): void {
    this.addSql('drop table "tag"');
  }
}
`,
    );
    // Someone made the table by hand on s1: the migration cannot run there.
    await orm.shard('s1').em.fork().getConnection().execute('create table "tag" ("id" integer not null primary key)');

    const error = await orm.migrator.up({ concurrency: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ShardedMigrationError);
    expect(error).toBeInstanceOf(ShardingError);
    const failure = error as ShardedMigrationError;
    expect(failure).toMatchObject({ code: 'MIGRATION_FAILED', shard: 's1', migration: name });
    expect(failure.cause).toBeInstanceOf(TableExistsException);
    expect(failure.message).toMatch(
      new RegExp(`^orm\\.migrator\\.up\\(\\) failed on shard "s1" in migration ${name}: .*tag.* Done: s0\\. Not started: s2\\. Fix the cause and run it again`),
    );
    expect(failure.report.map(r => [r.shard, r.status, r.migrations, r.failedMigration])).toEqual([
      ['s0', 'done', [name], undefined],
      ['s1', 'failed', [], name],
      ['s2', 'skipped', [], undefined],
    ]);
    // s1 kept none of it, s2 was not touched.
    const executed = await orm.migrator.executed();
    expect(executed.get('s0')!.at(-1)!.name).toBe(name);
    expect(executed.get('s1')!.at(-1)!.name).not.toBe(name);
    expect(executed.get('s2')!.at(-1)!.name).not.toBe(name);
    expect(await tables(orm, 's2')).not.toContain('tag');
    expect((await orm.migrator.status()).drift[0]!.groups.map(g => g.shards)).toEqual([['s0'], ['s1', 's2']]);

    // Fix the cause, run again: s0 is skipped, s1 and s2 catch up.
    await orm.shard('s1').em.fork().getConnection().execute('drop table "tag"');
    const resumed = await orm.migrator.up({ concurrency: 1 });
    expect(resumed.map(r => [r.shard, r.status, r.migrations])).toEqual([
      ['s0', 'done', []],
      ['s1', 'done', [name]],
      ['s2', 'done', [name]],
    ]);
    expect(await orm.migrator.status()).toMatchObject({ upToDate: true, drift: [] });
    for (const id of IDS) {
      const [row] = await orm.shard(id).em.fork().getConnection().execute('select count(*) as c from "tag"');
      expect(Number(row.c)).toBe(1);
    }
    await orm.close(true);
  });

  it('migrates at most `concurrency` shards at once, and starts none after a failure', async () => {
    let running = 0;
    let most = 0;
    const started: string[] = [];
    const failed = Promise.withResolvers<void>();
    class Probe extends Migration {
      override name = 'Probe';
      override async up(): Promise<void> {
        const shard = this.config.get('contextName');
        started.push(shard);
        running++;
        most = Math.max(most, running);
        if (shard === failOn) {
          running--;
          failed.resolve();
          throw new Error(`probe refused on ${shard}`);
        }
        // While c1 fails, c0 is still working: it finishes well after the failure, and nothing else starts.
        if (failOn) await failed.promise;
        await new Promise(resolve => setTimeout(resolve, 150));
        running--;
        this.addSql('create table probe (id integer primary key)');
      }
      override down(): void {
        this.addSql('drop table probe');
      }
    }
    let failOn: string | undefined;
    const orm = await ShardedMikroORM.init({
      ...topology.shared,
      entities: [noteEntity(1)],
      extensions: [Migrator],
      // In-code migrations have no folder: no snapshot either (it would land in the working directory).
      migrations: { migrationsList: [{ name: 'Probe', class: Probe }], snapshot: false, silent: true },
      shards: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`c${i}`, topology.database(`c${i}`)])),
      shardChooser: () => 'c0',
    });
    open.push(orm);

    failOn = 'c1';
    const error = await orm.migrator.up({ concurrency: 2 }).catch((e: unknown) => e as ShardedMigrationError);
    expect(error).toMatchObject({ code: 'MIGRATION_FAILED', shard: 'c1', migration: 'Probe' });
    expect((error as ShardedMigrationError).cause).toMatchObject({ message: 'probe refused on c1' });
    expect(started.toSorted()).toEqual(['c0', 'c1']);
    expect((error as ShardedMigrationError).report.map(r => r.status)).toEqual(['done', 'failed', 'skipped', 'skipped', 'skipped', 'skipped']);

    failOn = undefined;
    started.length = 0;
    most = 0;
    const report = await orm.migrator.up({ concurrency: 2 });
    expect(started.toSorted()).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    expect(most).toBe(2);
    expect(report.map(r => r.migrations.length)).toEqual([0, 1, 1, 1, 1, 1]);
    expect((await orm.migrator.status()).summary).toBe('migrationsList: c0, c1, c2, c3, c4, c5 at Probe; nothing pending.');
    await orm.close(true);
  });

  it('reports the migrations a failed shard keeps when its batch is not all-or-nothing', async () => {
    class First extends Migration {
      override up(): void {
        this.addSql('create table first_step (id integer primary key)');
      }
    }
    class Second extends Migration {
      override up(): void {
        if (this.config.get('contextName') === 'k1') throw new Error('second step refused on k1');
        this.addSql('create table second_step (id integer primary key)');
      }
    }
    const orm = await ShardedMikroORM.init({
      ...topology.shared,
      entities: [noteEntity(1)],
      extensions: [Migrator],
      migrations: {
        migrationsList: [
          { name: 'First', class: First },
          { name: 'Second', class: Second },
        ],
        allOrNothing: false,
        snapshot: false,
        silent: true,
      },
      shards: { k0: topology.database('k0'), k1: topology.database('k1') },
      shardChooser: () => 'k0',
    });
    open.push(orm);
    const error = (await orm.migrator.up({ concurrency: 1 }).catch((e: unknown) => e)) as ShardedMigrationError;
    expect(error).toMatchObject({ shard: 'k1', migration: 'Second' });
    expect(error.report.map(r => [r.shard, r.status, r.migrations])).toEqual([
      ['k0', 'done', ['First', 'Second']],
      ['k1', 'failed', ['First']],
    ]);
    expect((await orm.migrator.executed()).get('k1')!.map(row => row.name)).toEqual(['First']);
    await orm.close(true);
  });

  it('refuses unknown shards and a bad concurrency before touching any shard', async () => {
    const orm = await fleet(2);
    const before = await orm.migrator.executed();
    await expect(orm.migrator.up({ shards: ['s0', 'nope'] })).rejects.toMatchObject({ code: 'UNKNOWN_SHARD', value: 'nope' });
    await expect(orm.migrator.down({ concurrency: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(orm.migrator.status({ shards: [] })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    expect(await orm.migrator.executed()).toEqual(before);
    await orm.close(true);
  });

  it('gives a database with its own migrations folder its own migrations (per-database folders)', async () => {
    const main = join(root, 'main');
    const archive = join(root, 'archive');
    mkdirSync(archive);
    const orm = await fleet(1, main, {
      s0: topology.database('main0'),
      s1: topology.database('main1'),
      s2: { ...topology.database('archive'), migrations: { path: archive, silent: true } },
    });
    const created = await orm.migrator.create({ name: 'init' });
    expect(created.map(c => [c.reference, c.source, c.shards])).toEqual([
      ['s0', main, ['s0', 's1']],
      ['s2', archive, ['s2']],
    ]);
    expect(readdirSync(main).filter(f => f.endsWith('.ts'))).toEqual([created[0]!.fileName]);
    expect(readdirSync(archive).filter(f => f.endsWith('.ts'))).toEqual([created[1]!.fileName]);
    // One folder only, by its reference shard.
    const blank = await orm.migrator.create({ reference: 's2', blank: true, name: 'archive_blank' });
    expect(blank.map(c => [c.reference, c.shards])).toEqual([['s2', ['s2']]]);
    const mainBlank = await orm.migrator.create({ reference: 's1', blank: true, name: 'main_blank' });
    expect(mainBlank.map(c => [c.reference, c.source, c.shards])).toEqual([['s1', main, ['s0', 's1']]]);
    await expect(orm.migrator.create({ path: main })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });

    const status = await orm.migrator.status();
    expect(status.shards.map(s => [s.shard, s.source, s.pending.length])).toEqual([
      ['s0', main, 2],
      ['s1', main, 2],
      ['s2', archive, 2],
    ]);
    expect(status.drift).toEqual([]);
    await orm.close(true);
  });
});
