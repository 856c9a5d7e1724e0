/**
 * Every ```ts sample in README.md, the package's README and docs/*.md is type-checked and run, page by page, on
 * SQLite in a temp directory (test/support/doc-samples.ts says how a page's samples are read).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportsOf, fileModuleOf, modulesOf, samplesOf, type GeneratedModule } from './support/doc-samples.ts';
import { repoRoot } from './support/tools.ts';

const exec = promisify(execFile);
const PRELUDE = join(repoRoot, 'test/docs/prelude.ts');
const pages = [
  'README.md',
  'packages/mikro-orm-sharding/README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter(f => f.endsWith('.md'))
    .map(f => `docs/${f}`),
];
const samples = new Map(pages.map(page => [page, samplesOf(page, readFileSync(join(repoRoot, page), 'utf8'))]));
const withSamples = pages.filter(page => samples.get(page)!.length > 0);

let root: string;
const dirOf = (page: string) => join(root, page.replace(/\.md$/, '').replaceAll('/', '-'));
let modules: Map<string, GeneratedModule[]>;
/** tsc's diagnostics per page, mapped back to the page's lines. */
let diagnostics: Map<string, string[]>;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mikro-orm-sharding-docs-'));
  // Samples resolve `mikro-orm-sharding` and MikroORM from the repository, as a service resolves its dependencies.
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
  const preludeCode = readFileSync(PRELUDE, 'utf8');
  const prelude = exportsOf(PRELUDE, preludeCode);
  const files = [...samples.values()]
    .flat()
    .filter(sample => sample.file !== undefined)
    .map(fileModuleOf);
  modules = new Map(withSamples.map(page => [page, modulesOf(page, samples.get(page)!, prelude, files)]));
  for (const [page, list] of modules) {
    mkdirSync(dirOf(page));
    writeFileSync(join(dirOf(page), 'prelude.ts'), preludeCode);
    for (const module of list) writeFileSync(join(dirOf(page), module.name), module.text);
  }
  const compilerOptions = {
    target: 'es2024',
    lib: ['es2024', 'esnext.disposable'],
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    erasableSyntaxOnly: true,
    verbatimModuleSyntax: false,
    types: ['node'],
    customConditions: ['@mikro-orm-sharding/source'],
  };
  writeFileSync(join(root, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  writeFileSync(join(root, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*/*.ts'] }, null, 2));
  const out = await exec(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json', '--pretty', 'false'], { cwd: root, maxBuffer: 32 << 20 }).then(
    result => result.stdout,
    (error: { stdout?: string }) => error.stdout ?? String(error),
  );
  const found = new Map(withSamples.map(page => [page, new Set<string>()]));
  for (const line of out.split('\n')) {
    const [, dir, file, row, column, message] = /^([^/(]+)\/([^/(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line) ?? [];
    if (!file) continue;
    const page = withSamples.find(p => dirOf(p) === join(root, dir!))!;
    const module = modules.get(page)!.find(m => m.name === file);
    // A file block shared by every page reports on its own page, once.
    const owner = module && file !== 'prelude.ts' ? module.sample.page : page;
    const where = module && file !== 'prelude.ts' ? `${owner}:${module.sample.line + Number(row) - 1 - module.offset}:${column}` : `${file}:${row}:${column}`;
    found.get(owner)!.add(`${where}: ${message}`);
  }
  diagnostics = new Map([...found].map(([page, lines]) => [page, [...lines]]));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.each(withSamples)('%s', page => {
  it('its samples type-check', () => {
    expect(diagnostics.get(page)!.join('\n')).toBe('');
  });

  it('its samples run, in page order, on SQLite', async () => {
    // process.execPath is the pinned Node 24; the condition loads the library's source, as the rest of the suite does.
    const result = await exec(process.execPath, ['--conditions=@mikro-orm-sharding/source', 'main.ts'], { cwd: dirOf(page), timeout: 60_000 }).then(
      () => '',
      (error: { stderr?: string; message: string }) => mapStack(page, error.stderr || error.message),
    );
    expect(result).toBe('');
  });
});

/** Points the generated modules' lines in an error at the page's lines. */
function mapStack(page: string, text: string): string {
  return text.replace(/file:\/\/\S+?\/(L\d+\.ts|[\w.-]+\.ts):(\d+)(?::(\d+))?/g, (all, file: string, row: string) => {
    const module = modules.get(page)!.find(m => m.name === file);
    return module && file !== 'main.ts' ? `${module.sample.page}:${module.sample.line + Number(row) - 1 - module.offset}` : all;
  });
}
