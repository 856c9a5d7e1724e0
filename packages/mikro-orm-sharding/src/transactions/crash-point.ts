/**
 * Test-only. A hook the two-phase commit calls at each step of its protocol: `'begin'`, `'prepare:<i>'` (the i-th
 * participant is about to prepare), `'prepared:<n>'` (n shards have prepared), `'prepared'` (all have), `'logged'`
 * (the decision is committed), `'commit:<i>'`, `'committed:<n>'`. A promise it returns at `prepared`, `logged`,
 * `prepare:<i>` or `commit:<i>` holds the commit (or that participant) there until it settles.
 *
 * The crash harness (test/transactions-crash.test.ts) starts a process with `MIKRO_ORM_SHARDING_CRASH_AT` set to one
 * step; that process kills itself with SIGKILL when it reaches the step. For `'prepared:<n>'` and `'committed:<n>'`
 * the participants after the n-th are held before their own PREPARE (or COMMIT PREPARED), so that exactly n shards
 * have done it when the process dies, although the shards go in parallel. The outage tests set a hook in their own
 * process ({@link setCrashPoint}) to stop a shard's server at a step. Otherwise (always, outside tests)
 * `crashPoint` is `undefined`, and each step costs one `?.` on it.
 *
 * @internal
 */
export type CrashPoint = (step: string) => Promise<unknown> | undefined;

export let crashPoint: CrashPoint | undefined = crashAt(process.env.MIKRO_ORM_SHARDING_CRASH_AT);

/** Test-only: sets the hook of this process (undefined: none). */
export function setCrashPoint(hook: CrashPoint | undefined): void {
  crashPoint = hook;
}

function crashAt(at: string | undefined): CrashPoint | undefined {
  if (!at) {
    return undefined;
  }
  const [phase, count] = at.split(':');
  const held = phase === 'prepared' ? 'prepare' : phase === 'committed' ? 'commit' : undefined;
  return step => {
    if (step === at) {
      process.kill(process.pid, 'SIGKILL');
    }
    const [name, nth] = step.split(':');
    return name === held && Number(nth) > Number(count) ? new Promise<never>(() => undefined) : undefined;
  };
}
