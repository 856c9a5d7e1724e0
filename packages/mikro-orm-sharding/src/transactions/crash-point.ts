/**
 * Test-only. The crash harness (test/transactions-crash.test.ts) starts a process with `MIKRO_ORM_SHARDING_CRASH_AT`
 * set to one step of the two-phase commit (`'prepared:1'`, `'logged'`, ...); that process kills itself with SIGKILL
 * when it reaches the step. Unset (always, outside that harness), `crashPoint` is `undefined`, and each step costs
 * one `?.` on it.
 *
 * @internal
 */
export const crashPoint: ((step: string) => void) | undefined = crashAt(process.env.MIKRO_ORM_SHARDING_CRASH_AT);

function crashAt(at: string | undefined): ((step: string) => void) | undefined {
  if (!at) {
    return undefined;
  }
  return step => {
    if (step === at) {
      process.kill(process.pid, 'SIGKILL');
    }
  };
}
