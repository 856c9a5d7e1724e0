import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The pnpm that runs this suite (`pnpm test` sets npm_execpath), else the pinned one through npx. */
export function pnpm(): string[] {
  const current = process.env.npm_execpath;
  if (current && /pnpm/.test(current)) return /\.[cm]?js$/.test(current) ? [process.execPath, current] : [current];
  return ['npx', '-y', 'pnpm@12.21.0'];
}

/**
 * The environment for npm in a project of its own: without the `npm_*` variables a package manager sets for the
 * script running this suite (`npm_config_local_prefix` would point npm at this repository).
 */
export function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
}
