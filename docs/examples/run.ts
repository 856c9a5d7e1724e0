/**
 * `pnpm example <name>` runs docs/examples/<name>/main.ts; `pnpm example` lists the examples.
 * The root script starts this file with the repository's Node 24 and `--conditions=@mikro-orm-sharding/source`, so
 * the examples import the library from its TypeScript source, as they would import the installed package.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const examples = readdirSync(here, { withFileTypes: true })
  .filter(entry => entry.isDirectory() && existsSync(`${here}${entry.name}/main.ts`))
  .map(entry => entry.name)
  .sort();

const name = process.argv[2];
if (name === undefined || !examples.includes(name)) {
  if (name !== undefined) {
    console.error(`No example "${name}".`);
  }
  console.error(`Usage: pnpm example <name>, one of:\n${examples.map(example => `  ${example}`).join('\n')}`);
  process.exit(name === undefined ? 0 : 1);
}
await import(`./${name}/main.ts`);
