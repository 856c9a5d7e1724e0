/**
 * Test-only. The crash harness (test/transactions-crash.test.ts) starts a process with `MIKRO_ORM_SHARDING_CRASH_AT`
 * set to one step of the two-phase commit (`'begin'`, `'prepared:1'`, `'prepared'`, `'logged'`, `'committed:1'`,
 * ...); that process kills itself with SIGKILL when it reaches the step. For `'prepared:<n>'` and `'committed:<n>'`
 * the participants after the n-th are held before their own PREPARE (or COMMIT PREPARED), so that exactly n shards
 * have done it when the process dies, although the shards go in parallel. Unset (always, outside that harness),
 * `crashPoint` is `undefined`, and each step costs one `?.` on it.
 *
 * @internal
 */
export const crashPoint: ((step: string) => Promise<never> | undefined) | undefined = crashAt(process.env.MIKRO_ORM_SHARDING_CRASH_AT);

function crashAt(at: string | undefined): ((step: string) => Promise<never> | undefined) | undefined {
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
