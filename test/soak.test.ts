// The soak script (benchmarks/src/soak.ts) in short: a few seconds, few clients, small pools. It asserts the soak's
// own checks (no request saw another's entities, no committed row lost or invented) and that its report is complete;
// no timing is asserted.
import { describe, expect, it, onTestFinished } from 'vitest';
import { ShardedMikroORM, ShardedRequestContext } from 'mikro-orm-sharding';
import { finalChecks, formatSoakReport, runSoak } from '../benchmarks/src/soak.ts';
import { accountIds, ownerTag, soakRouting, SoakAccount, SoakItem } from '../benchmarks/src/soak/model.ts';
import { checkIsolation, fanOut, NOTHING, read, SoakClient, SoakViolation, transfer, type StepContext } from '../benchmarks/src/soak/steps.ts';
import { PG_URL, sqliteTopology } from './support/topology.ts';

describe('soak (short)', () => {
  it('serves concurrent request contexts with isolated identity maps and loses no row', { timeout: 60_000 }, async () => {
    const report = await runSoak({
      pgUrl: PG_URL,
      clients: 60,
      seconds: 3,
      shards: 3,
      poolMax: 3,
      sampleMs: 500,
      seed: 7,
      mix: { read: 30, write: 25, fanOut: 10 },
      transactions: ['one-shard', 'twopc', 'multi'],
    });
    expect(report.checks).toMatchObject({
      ok: true,
      isolationViolations: 0,
      lostRows: 0,
      phantomRows: 0,
      wrongAnswers: 0,
      balanceMismatches: 0,
      accountMismatches: 0,
    });
    expect(report.errors).toBe(0);
    expect(report.checks.rowsCommitted).toBeGreaterThan(0);
    expect(report.checks.rowsInDatabase).toBe(report.checks.rowsCommitted);
    for (const kind of ['read', 'write', 'fanOut', 'tx:one-shard', 'tx:twopc', 'tx:multi']) {
      expect(report.operations[kind]!.count).toBeGreaterThan(0);
      expect(report.operations[kind]!.p99Ms).toBeGreaterThanOrEqual(report.operations[kind]!.p50Ms);
    }
    expect(report.samples.length).toBeGreaterThanOrEqual(3);
    for (const sample of report.samples) {
      expect(Object.keys(sample.pools)).toEqual(['s0', 's1', 's2']);
      expect(Object.values(sample.pools).every(pool => pool.total <= 3)).toBe(true);
      expect(sample.rssMb).toBeGreaterThan(0);
      expect(sample.prepared).toBeGreaterThanOrEqual(0);
    }
    expect(report.crossShardWait.count).toBe(report.operations['tx:twopc']!.count + report.operations['tx:multi']!.count);
    expect(formatSoakReport(report)).toContain('checks: OK');
  });

  it('refuses an unknown transactional step before touching the server', async () => {
    await expect(runSoak({ pgUrl: PG_URL, transactions: ['one-shard', 'xa-someday'] })).rejects.toThrow(
      /unknown transaction step "xa-someday" \(choose from one-shard, twopc, multi\)/,
    );
  });
});

describe("the soak's checks catch what they look for", () => {
  it("a request holding another client's entity, a committed row that is missing", async () => {
    const topology = sqliteTopology();
    onTestFinished(() => topology.dispose());
    await using orm = await ShardedMikroORM.init({ ...topology.shared, ...soakRouting(2), shards: topology.shards(2) });
    await orm.schema.create();
    const [mine, theirs] = [new SoakClient(0), new SoakClient(1)];
    await orm.em.fork().insert(SoakItem, { id: 1_000_000, owner: theirs.owner, seq: 0 });
    const violation = (run: () => Promise<void>) =>
      ShardedRequestContext.create(orm.em, run).then(
        () => undefined,
        (error: unknown) => error,
      );
    const seen = await violation(async () => {
      await orm.em.findOne(SoakItem, 1_000_000);
      checkIsolation(ShardedRequestContext.getEntityManager(orm)!, mine, orm.shardIds);
    });
    expect(seen).toBeInstanceOf(SoakViolation);
    expect(seen).toMatchObject({ kind: 'isolation', message: expect.stringContaining('c0') });
    mine.items.push(42);
    const context = { em: orm.em, client: mine, shards: 2, random: () => 0, acrossShards: <T>(run: () => Promise<T>) => run(), planned: NOTHING };
    expect(await violation(() => read(context))).toMatchObject({ kind: 'lost-row' });
    expect(await violation(() => fanOut(context))).toMatchObject({ kind: 'lost-row' });
  });

  it("a transfer that is not all-or-nothing: the sum of the client's balances moved", async () => {
    const topology = sqliteTopology();
    onTestFinished(() => topology.dispose());
    await using orm = await ShardedMikroORM.init({ ...topology.shared, ...soakRouting(2), shards: topology.shards(2) });
    await orm.schema.create();
    const client = new SoakClient(0);
    await orm.em.fork().insertMany(
      SoakAccount,
      accountIds(0).map(id => ({ id, owner: ownerTag(0), balance: 0 })),
    );
    const context: StepContext = { em: orm.em, client, shards: 2, random: () => 0.7, acrossShards: run => run(), planned: NOTHING };
    await ShardedRequestContext.create(orm.em, () => transfer('multi')(context));
    client.committed(context.planned);
    expect(client.accounts).toEqual([8, -8]);
    expect(await finalChecks(orm, [client], [])).toMatchObject({ ok: true, balanceMismatches: 0, accountMismatches: 0 });
    // Half of a transfer: one account credited, the other not debited.
    await orm.em.fork().nativeUpdate(SoakAccount, { id: accountIds(0)[0] }, { balance: 11 });
    const checks = await finalChecks(orm, [client], []);
    expect(checks).toMatchObject({ ok: false, balanceMismatches: 1, accountMismatches: 1 });
    expect(checks.examples).toContain('c0: balances add up to 3, committed 0 (0 uncertain)');
  });
});
