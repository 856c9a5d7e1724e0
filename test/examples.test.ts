/**
 * Every example of docs/examples runs as `pnpm example <name>` runs it: the repository's Node 24 (`process.execPath`)
 * with `--conditions=@mikro-orm-sharding/source`, on docs/examples/run.ts. Each must exit with 0, print exactly the
 * output its README shows, and leave nothing behind: no file in its temp folder (TMPDIR points at a fresh one), no
 * file added to its own folder, and no database or role on the PostgreSQL server.
 * The examples run at the same time, each in its own process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminQuery } from './support/topology.ts';
import { repoRoot } from './support/tools.ts';

const EXAMPLES = join(repoRoot, 'docs/examples');
const examples = readdirSync(EXAMPLES, { withFileTypes: true })
  .filter(entry => entry.isDirectory() && existsSync(join(EXAMPLES, entry.name, 'main.ts')))
  .map(entry => entry.name)
  .sort();

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pid: number;
}

/** `pnpm example ...args`, without pnpm. */
function example(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@mikro-orm-sharding/source', 'docs/examples/run.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', chunk => (stdout += String(chunk)));
    child.stderr.on('data', chunk => (stderr += String(chunk)));
    child.once('error', reject);
    child.once('close', code => resolve({ code, stdout, stderr, pid: child.pid! }));
  });
}

/** The ```text block under "## Output" in the example's README. */
function documentedOutput(name: string): string {
  const readme = readFileSync(join(EXAMPLES, name, 'README.md'), 'utf8');
  const block = /## Output\n\n```text\n([\s\S]*?)\n```/.exec(readme);
  if (!block) throw new Error(`docs/examples/${name}/README.md has no "## Output" section with a \`\`\`text block`);
  return block[1]!;
}

/** Every file under a folder, relative to it. */
const filesUnder = (folder: string) => readdirSync(folder, { recursive: true, encoding: 'utf8' }).sort();

/** Databases and roles the examples' scratch helper made in process `pid` (`example_<name>_<pid>_<time>`). */
async function leftOnServer(pid: number): Promise<string[]> {
  const pattern = `example\\_%\\_${pid}\\_%`;
  const [databases, roles] = await adminQuery([
    ['select datname as name from pg_database where datname like ?', [pattern]],
    ['select rolname as name from pg_roles where rolname like ?', [pattern]],
  ]);
  return [...databases!, ...roles!].map(row => String(row.name));
}

describe.concurrent('docs/examples: each runs with one command, prints what its README shows, and leaves nothing', () => {
  it('finds the examples', () => {
    expect(examples).toEqual([
      'albums',
      'flask-binds',
      'game-server',
      'hot-archive',
      'pylons',
      'reader-writer-logger',
      'table-suffix',
      'two-databases',
      'warehouse',
    ]);
  });

  for (const name of examples) {
    it(`pnpm example ${name}`, async () => {
      const temp = mkdtempSync(join(tmpdir(), `mos-example-${name}-`));
      const ownFiles = filesUnder(join(EXAMPLES, name));
      try {
        const run = await example([name], { TMPDIR: temp });
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout.trim()).toBe(documentedOutput(name));
        expect(readdirSync(temp)).toEqual([]);
        expect(filesUnder(join(EXAMPLES, name))).toEqual(ownFiles);
        expect(await leftOnServer(run.pid)).toEqual([]);
      } finally {
        rmSync(temp, { recursive: true, force: true });
      }
    });
  }

  it('pnpm example without a name lists the examples; an unknown name fails and lists them', async () => {
    const list = await example([]);
    expect(list.code).toBe(0);
    expect(list.stderr).toContain('Usage: pnpm example <name>, one of:');
    for (const name of examples) expect(list.stderr).toContain(`  ${name}\n`);

    const unknown = await example(['tenant-per-schema']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No example "tenant-per-schema".');
    expect(unknown.stdout).toBe('');
  });

  it('docs/examples/README.md links every example', () => {
    const readme = readFileSync(join(EXAMPLES, 'README.md'), 'utf8');
    for (const name of examples) expect(readme).toContain(`(${name}/)`);
  });
});
