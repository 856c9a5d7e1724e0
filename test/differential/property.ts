import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Topology } from '../support/topology.ts';
import { disagreement, json } from './check.ts';
import { dataset, load } from './data.ts';
import { closePair, openPair, type Pair, type Routing } from './fleets.ts';
import { queries } from './queries.ts';

/**
 * How much to explore: `DIFF_RUNS` (default 200) random data sets, each with up to ten queries, per driver, from
 * `DIFF_SEED`. Without a seed each run explores anew; a failure prints the seed and path that replay it
 * (`DIFF_SEED=... DIFF_PATH=... pnpm exec vitest run test/differential`).
 */
const RUNS = Number(process.env.DIFF_RUNS ?? 200);
const SEED = process.env.DIFF_SEED === undefined ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(process.env.DIFF_SEED);
const PATH = process.env.DIFF_PATH;

/**
 * Random data, random queries: four shards must answer as one plain database holding every row. With a `shardBy`
 * routing, queries that pin the record's id (or a leaf's record) are pruned to fewer shards, and must still answer
 * alike; `share` is the part of `DIFF_RUNS` this run explores.
 */
export function describeDifferential(makeTopology: () => Topology, routing: Routing = 'choosers', share = 1): void {
  const runs = Math.max(1, Math.ceil(RUNS * share));
  let topology: Topology;
  let pair: Pair | undefined;

  beforeAll(async () => {
    topology = makeTopology();
    pair = await openPair(topology, routing);
  });

  afterAll(async () => {
    await closePair(pair);
    await topology?.dispose();
  });

  describe(`${runs} random data sets (of DIFF_RUNS), seed ${SEED} (DIFF_SEED)`, () => {
    it(
      'find, findAndCount, count and findOne answer as one database, or refuse as documented',
      async () => {
        const property = fc.asyncProperty(dataset, queries, async (rows, list) => {
          await load(pair!, rows);
          for (const query of list) {
            const problem = await disagreement(pair!, query, topology.name, rows);
            if (problem) {
              throw new Error(`${query.op}(${query.entity}, ${json(query.where)}, ${json(query.options)}):\n  ${problem}`);
            }
          }
        });
        const details = await fc.check(property, { numRuns: runs, seed: SEED, ...(PATH ? { path: PATH } : {}) });
        if (details.failed) {
          const replay = `DIFF_SEED=${details.seed} DIFF_PATH=${details.counterexamplePath}`;
          const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
          throw new Error(`${cause}\n\nReplay: ${replay}\n${fc.defaultReportMessage(details)}`);
        }
      },
      60_000 + runs * 400,
    );
  });
}
