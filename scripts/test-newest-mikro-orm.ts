/**
 * CI, after the suite has passed on the pinned MikroORM: the suite again on the newest MikroORM 7.x the registry
 * serves. Every @mikro-orm/* package pins `@mikro-orm/core` and `@mikro-orm/sql` exactly, and the registry does
 * not always serve every package at every version (SQLite's driver may stop at 7.2.2 while PostgreSQL's goes on to
 * 7.2.5), so "newest" is a set per driver: the driver, core and sql at the newest version all three share. The
 * whole suite runs once per driver whose set is newer than the pinned version; the workspace's other @mikro-orm/*
 * packages are held at their newest release up to that version, on the same core and sql (pnpm overrides).
 * Each run works in a temporary copy of the repository; this checkout is left as it is.
 *
 * Usage: pnpm test:newest-mikro-orm [--dry-run]   (--dry-run: print the sets, run nothing)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const DRIVERS = ['@mikro-orm/sqlite', '@mikro-orm/postgresql'];

interface Run {
  readonly name: string;
  readonly version: string;
  readonly overrides: Record<string, string>;
  readonly env: Record<string, string>;
  /** Test files left to the pinned run: a package they need is not published at this version. */
  readonly excluded: readonly string[];
}

/**
 * Test files that need a package which checks that it runs on its own MikroORM version (the CLI refuses a core of
 * another version): at a version where that package is not published, they cannot run, and only the pinned run has them.
 */
const NEEDS_OWN_VERSION: Record<string, readonly string[]> = { '@mikro-orm/cli': ['test/cli.test.ts'] };

const manifests = ['package.json', 'benchmarks/package.json', ...readdirSync(join(root, 'packages')).map(dir => `packages/${dir}/package.json`)];
const used = new Set<string>();
for (const file of manifests) {
  const manifest = JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<string, Record<string, string> | undefined>;
  for (const field of ['dependencies', 'devDependencies', 'peerDependencies']) {
    for (const name of Object.keys(manifest[field] ?? {})) if (name.startsWith('@mikro-orm/')) used.add(name);
  }
}
const pinned = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies[
  '@mikro-orm/core'
]!;

const compare = (a: string, b: string) => {
  const [x, y] = [a, b].map(v => v.split('.').map(Number));
  return x![0]! - y![0]! || x![1]! - y![1]! || x![2]! - y![2]!;
};

function npmView<T>(...args: string[]): T {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  return JSON.parse(execFileSync('npm', ['view', ...args, '--json'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] }) || 'null') as T;
}

const published = new Map<string, string[]>();
function versionsOf(pkg: string): string[] {
  if (!published.has(pkg)) {
    const all = npmView<string[] | string>(pkg, 'versions');
    published.set(pkg, (Array.isArray(all) ? all : [all]).filter(v => /^7\.\d+\.\d+$/.test(v)).sort(compare));
  }
  return published.get(pkg)!;
}

/** Whether every package is published at `version` and pins its @mikro-orm/* dependencies to it. */
function consistent(packages: readonly string[], version: string): boolean {
  if (!packages.every(pkg => versionsOf(pkg).includes(version))) return false;
  return packages.every(pkg => {
    const info = npmView<{ dependencies?: Record<string, string>; peerDependencies?: Record<string, string> }>(
      `${pkg}@${version}`,
      'dependencies',
      'peerDependencies',
    );
    const pins = { ...info?.dependencies, ...info?.peerDependencies };
    return Object.entries(pins).every(
      ([name, range]) => !name.startsWith('@mikro-orm/') || range === version || range === `^${version}` || range === `~${version}`,
    );
  });
}

/** The newest version at which `packages` form a consistent set. */
function newestSet(packages: readonly string[]): string | undefined {
  const candidates = versionsOf(packages[0]!)
    .filter(v => packages.every(pkg => versionsOf(pkg).includes(v)))
    .reverse();
  return candidates.find(v => consistent(packages, v));
}

function plan(): Run[] {
  const all = [...used].sort();
  const runs: Run[] = [];
  for (const driver of DRIVERS.filter(pkg => used.has(pkg))) {
    const own = ['@mikro-orm/core', '@mikro-orm/sql', driver];
    const version = newestSet(own);
    if (!version) throw new Error(`no MikroORM 7.x version has ${own.join(', ')} published together`);
    if (compare(version, pinned) <= 0) {
      console.log(`${driver}: ${pinned} (pinned) is its newest set; the pinned run covered it.`);
      continue;
    }
    const rest = all
      .filter(pkg => !own.includes(pkg))
      .map(pkg => [
        pkg,
        versionsOf(pkg)
          .filter(v => compare(v, version) <= 0)
          .at(-1)!,
      ]);
    const overrides = { ...Object.fromEntries(rest), ...Object.fromEntries(own.map(pkg => [pkg, version])) } as Record<string, string>;
    if (runs.some(run => JSON.stringify(run.overrides) === JSON.stringify(overrides))) continue;
    // The packed-package test installs the SQLite driver with npm: at this version when it has one.
    const env: Record<string, string> = versionsOf('@mikro-orm/sqlite').includes(version) ? { MIKRO_ORM_VERSION: version } : {};
    const excluded = Object.entries(NEEDS_OWN_VERSION)
      .filter(([pkg]) => used.has(pkg) && !versionsOf(pkg).includes(version))
      .flatMap(([, files]) => files);
    runs.push({ name: `whole suite, ${driver} ${version}`, version, overrides, env, excluded });
  }
  return runs;
}

function pnpm(): string[] {
  const current = process.env.npm_execpath;
  if (current && /pnpm/.test(current)) return /\.[cm]?js$/.test(current) ? [process.execPath, current] : [current];
  return ['npx', '-y', 'pnpm@12.21.0'];
}

function sh(cwd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const [command, ...rest] = args;
  console.log(`$ ${args.join(' ')}`);
  const result = spawnSync(command!, rest, { cwd, env, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed (${result.status ?? result.signal})`);
}

function execute(run: Run): void {
  const copy = mkdtempSync(join(tmpdir(), 'mikro-orm-sharding-newest-'));
  try {
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
      .split('\0')
      .filter(Boolean);
    for (const file of files) {
      let isFile = false;
      try {
        isFile = statSync(join(root, file)).isFile();
      } catch {
        continue; // deleted in the work tree
      }
      if (!isFile) continue;
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      cpSync(join(root, file), join(copy, file));
    }
    const workspace = join(copy, 'pnpm-workspace.yaml');
    const overrides = Object.entries(run.overrides).map(([pkg, version]) => `  '${pkg}': ${version}`);
    writeFileSync(workspace, `${readFileSync(workspace, 'utf8').trimEnd()}\noverrides:\n${overrides.join('\n')}\n`);
    const [command, ...prefix] = pnpm();
    sh(copy, [command!, ...prefix, 'install', '--no-frozen-lockfile', '--prefer-offline', '--reporter=append-only']);
    const installed = (JSON.parse(readFileSync(join(copy, 'node_modules/@mikro-orm/core/package.json'), 'utf8')) as { version: string }).version;
    if (installed !== run.version) throw new Error(`@mikro-orm/core ${installed} was installed, not ${run.version}`);
    const exclude = run.excluded.flatMap(file => ['--exclude', file]);
    sh(copy, [command!, ...prefix, 'test', ...exclude], { ...process.env, ...run.env });
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

const runs = plan();
for (const run of runs)
  console.log(
    `${run.name}: ${Object.entries(run.overrides)
      .map(([p, v]) => `${p}@${v}`)
      .join(' ')}${run.excluded.length > 0 ? ` (not published at ${run.version}, so left to the pinned run: ${run.excluded.join(', ')})` : ''}`,
  );
if (!process.argv.includes('--dry-run')) {
  const failed: string[] = [];
  for (const run of runs) {
    const started = Date.now();
    console.log(`\n=== ${run.name}`);
    try {
      execute(run);
      console.log(`=== ${run.name}: passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    } catch (error) {
      console.error(`=== ${run.name}: FAILED in ${((Date.now() - started) / 1000).toFixed(0)} s: ${(error as Error).message}`);
      failed.push(run.name);
    }
  }
  if (failed.length > 0) {
    console.error(`\nnewest MikroORM: ${failed.length} of ${runs.length} runs failed: ${failed.join('; ')}`);
    process.exit(1);
  }
  console.log(`\nnewest MikroORM: ${runs.length} of ${runs.length} runs passed`);
}
