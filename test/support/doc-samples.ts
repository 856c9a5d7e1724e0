/**
 * Turns the ```ts samples of a Markdown page into modules that type-check and run in page order.
 *
 * How a page's samples are read (the rules test/docs.test.ts applies to README.md and docs/*.md):
 * - ```ts blocks run in page order, as one story: a block may use any name an earlier block on the page
 *   declared (`em`, `orm`, `Author`, ...), and the names of `test/docs/prelude.ts` (what samples leave to the
 *   reader: a configured fleet, an `Order` entity, ...).
 * - A block whose first line is `// name.ts` is a module of that name that later blocks import from
 *   (`import { Author } from './entities.ts'`), on its page and on every other one.
 * - ```ts typecheck blocks are compiled but not run, and their names stay their own: for samples that need
 *   what this test does not have (a PostgreSQL host, a web app).
 * - ```ts signature blocks restate the library's types; each `type X = ...` must equal the exported `X`.
 * - Other languages (```bash, ```text, ```python) are not samples.
 */
import { parseSync } from 'oxc-parser';

export type Mode = 'run' | 'typecheck' | 'signature';

export interface Sample {
  /** The page's path relative to the repository, e.g. `docs/getting-started.md`. */
  readonly page: string;
  /** The 1-based line of the sample's first code line in the page. */
  readonly line: number;
  readonly mode: Mode;
  readonly code: string;
  /** Set when the block's first line is `// name.ts`. */
  readonly file: string | undefined;
}

export interface GeneratedModule {
  readonly name: string;
  readonly text: string;
  /** Lines the generator put above the sample's code, to map diagnostics back to the page. */
  readonly offset: number;
  readonly sample: Sample;
}

const FENCE = /^(\s*)```(\S*)(.*)$/;

/** The ```ts blocks of one page. Throws on an unknown info word, so a typo does not silently skip a sample. */
export function samplesOf(page: string, markdown: string): Sample[] {
  const samples: Sample[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', language, info = ''] = open;
    const end = lines.findIndex((l, j) => j > i && l.trimStart().startsWith('```'));
    if (end === -1) throw new Error(`${page}:${i + 1}: unclosed code block`);
    if (language === 'ts' || language === 'typescript') {
      const words = info.trim().split(/\s+/).filter(Boolean);
      const mode = (words[0] ?? 'run') as Mode;
      if (!['run', 'typecheck', 'signature'].includes(mode) || words.length > 1) {
        throw new Error(`${page}:${i + 1}: unknown sample kind "${info.trim()}" (use \`ts\`, \`ts typecheck\` or \`ts signature\`)`);
      }
      // A block inside a list item is indented: its code is not.
      const code = lines
        .slice(i + 1, end)
        .map(l => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n');
      const file = /^\/\/ ([\w.-]+\.ts)\s*$/.exec(code.split('\n')[0] ?? '')?.[1];
      samples.push({ page, line: i + 2, mode, code, file });
    }
    i = end;
  }
  return samples;
}

interface Declared {
  readonly values: Set<string>;
  readonly types: Set<string>;
  /** Bindings that later samples must not reach: `using` ones are disposed when their sample ends. */
  readonly local?: Set<string>;
}

/** The names a module declares at its top level (imports included), split into values and types. */
export function declarationsOf(fileName: string, code: string): Declared {
  const { program, errors } = parseSync(fileName, code);
  if (errors.length > 0) throw new Error(`${fileName} does not parse: ${errors.map(e => e.message).join('; ')}\n${code}`);
  const values = new Set<string>();
  const types = new Set<string>();
  const local = new Set<string>();
  const declare = (node: Node | null | undefined): void => {
    if (!node) return;
    switch (node.type) {
      case 'ImportDeclaration':
        for (const s of node.specifiers ?? []) (node.importKind === 'type' || s.importKind === 'type' ? types : values).add(s.local.name);
        return;
      case 'ExportNamedDeclaration':
        declare(node.declaration);
        return;
      case 'VariableDeclaration':
        for (const d of node.declarations) bindings(d.id, String(node.kind).includes('using') ? local : values);
        return;
      case 'FunctionDeclaration':
      case 'ClassDeclaration':
      case 'TSEnumDeclaration':
        if (node.id) values.add(node.id.name);
        if (node.type === 'ClassDeclaration' && node.id) types.add(node.id.name);
        return;
      case 'TSTypeAliasDeclaration':
      case 'TSInterfaceDeclaration':
        types.add(node.id.name);
        return;
      default:
    }
  };
  for (const statement of program.body as Node[]) declare(statement);
  return { values, types, local };
}

/** The names a prelude module exports. */
export function exportsOf(fileName: string, code: string): Declared {
  const { program } = parseSync(fileName, code);
  const values = new Set<string>();
  const types = new Set<string>();
  for (const node of program.body as Node[]) {
    if (node.type !== 'ExportNamedDeclaration') continue;
    if (node.declaration) {
      const inner = declarationsOf(fileName, code.slice(node.declaration.start, node.declaration.end));
      inner.values.forEach(v => values.add(v));
      inner.types.forEach(t => types.add(t));
    }
    for (const s of node.specifiers ?? []) (node.exportKind === 'type' || s.exportKind === 'type' ? types : values).add(s.exported.name);
  }
  return { values, types };
}

/** Every identifier the code mentions (a superset of the names it uses, which is all the imports need). */
export function identifiersOf(fileName: string, code: string): Set<string> {
  const names = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    const node = value as Node;
    if (node.type === 'Identifier' && typeof node.name === 'string') names.add(node.name);
    for (const [key, child] of Object.entries(node)) {
      if (key === 'property' && node.type === 'MemberExpression' && !node.computed) continue;
      if (key === 'key' && !node.computed && !node.shorthand) continue;
      visit(child);
    }
  };
  visit(parseSync(fileName, code).program.body);
  return names;
}

/** A file block (`// name.ts`) as the module it is: self-contained, it imports what it uses itself. */
export function fileModuleOf(sample: Sample): GeneratedModule {
  const own = declarationsOf(sample.file!, sample.code);
  const header = [`// ${sample.page}:${sample.line} (${sample.file})`];
  return { name: sample.file!, text: [...header, sample.code, ...exportsFor(sample.code, own), ''].join('\n'), offset: header.length, sample };
}

/**
 * The modules for one page and the module that runs it (`main.ts`). Each runnable sample imports the samples
 * before it, so the page runs in order, imports the names it uses from the latest earlier module that declares
 * them (or from the prelude), and exports what it declares. `files` are the file blocks of every page.
 */
export function modulesOf(page: string, samples: readonly Sample[], prelude: Declared, files: readonly GeneratedModule[]): GeneratedModule[] {
  const owner = new Map<string, { module: string; type: boolean }>();
  const own = (module: string, declared: Declared) => {
    for (const name of declared.values) owner.set(name, { module, type: false });
    for (const name of declared.types) if (!declared.values.has(name)) owner.set(name, { module, type: true });
  };
  own('./prelude.ts', prelude);
  const modules: GeneratedModule[] = files.filter(file => file.sample.page !== page);
  let before: string[] = [];
  for (const sample of samples) {
    if (sample.file) {
      const module = fileModuleOf(sample);
      modules.push(module);
      own(`./${module.name}`, declarationsOf(module.name, sample.code));
      before.push(`./${module.name}`);
      continue;
    }
    const name = `L${sample.line}.ts`;
    const declared = declarationsOf(name, sample.code);
    const header: string[] = [`// ${sample.page}:${sample.line}${sample.mode === 'run' ? '' : ` (${sample.mode})`}`];
    if (sample.mode === 'run') header.push(...before.map(module => `import '${module}';`));
    const imports = new Map<string, { values: string[]; types: string[] }>();
    for (const used of identifiersOf(name, sample.code)) {
      const from = owner.get(used);
      if (!from || declared.values.has(used) || declared.types.has(used) || declared.local?.has(used)) continue;
      const entry = imports.get(from.module) ?? { values: [], types: [] };
      (from.type ? entry.types : entry.values).push(used);
      imports.set(from.module, entry);
    }
    for (const [module, { values, types }] of imports) {
      header.push(`import { ${[...values.sort(), ...types.sort().map(t => `type ${t}`)].join(', ')} } from '${module}';`);
    }
    const footer: string[] = [];
    if (sample.mode === 'signature') {
      footer.push(`import type * as Library from 'mikro-orm-sharding';`, 'type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;');
      for (const type of declared.types) footer.push(`export const same${type}: Same<${type}, Library.${type}> = true;`);
    }
    if (sample.mode === 'run') {
      footer.push(...exportsFor(sample.code, declared));
      own(`./${name}`, declared);
      before = [`./${name}`];
    }
    if (footer.length === 0) footer.push('export {};');
    modules.push({ name, text: [...header, sample.code, ...footer, ''].join('\n'), offset: header.length, sample });
  }
  const main = before.map(module => `import '${module}';`);
  modules.push({ name: 'main.ts', text: [`// runs ${page}`, ...main, 'export {};', ''].join('\n'), offset: 0, sample: samples[0]! });
  return modules;
}

function exportsFor(code: string, declared: Declared): string[] {
  const values = [...declared.values].filter(name => !exportedBy(code, name));
  const types = [...declared.types].filter(name => !declared.values.has(name) && !exportedBy(code, name));
  return [...(values.length > 0 ? [`export { ${values.join(', ')} };`] : []), ...(types.length > 0 ? [`export type { ${types.join(', ')} };`] : [])];
}

function exportedBy(code: string, name: string): boolean {
  return new RegExp(`^export\\s+(declare\\s+)?(const|let|var|function|async function|class|abstract class|type|interface|enum)\\s+${name}\\b`, 'm').test(code);
}

// The few ESTree node fields read here; oxc-parser's own types are wider than this needs.
interface Node {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly [field: string]: any;
}

function bindings(pattern: Node | null, into: Set<string>): void {
  if (!pattern) return;
  switch (pattern.type) {
    case 'Identifier':
      into.add(pattern.name);
      return;
    case 'ObjectPattern':
      for (const p of pattern.properties) bindings(p.type === 'RestElement' ? p.argument : p.value, into);
      return;
    case 'ArrayPattern':
      for (const e of pattern.elements) bindings(e, into);
      return;
    case 'RestElement':
      bindings(pattern.argument, into);
      return;
    case 'AssignmentPattern':
      bindings(pattern.left, into);
      return;
    default:
  }
}
