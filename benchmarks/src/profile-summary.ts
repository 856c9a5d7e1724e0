// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per package/file, and the total
// time spent under functions whose location matches a filter (e.g. the sharding library).
//   node benchmarks/src/profile-summary.ts FILE.cpuprofile [--top 25] [--under mikro-orm-sharding/src | --under fn:NAME]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const pnpm = path.match(/node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
  if (pnpm) return `${pnpm[1]}/${pnpm[2]}`;
  const nm = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
  if (nm) return `${nm[1]}/${nm[2]}`;
  const repo = path.match(/\/(packages\/.*|benchmarks\/.*)$/);
  return repo ? repo[1]! : path;
}

function pkg(file: string): string {
  const m = file.match(/^((?:@[^/]+\/)?[^/]+)/);
  if (file.startsWith('packages/')) return file.split('/').slice(0, 2).join('/');
  if (file.startsWith('benchmarks/')) return 'benchmarks';
  return m ? m[1]! : file;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string' }, under: { type: 'string' } },
});
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [--top N] [--under SUBSTRING]\n');
  process.exit(2);
}
const top = Number(values.top ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map(n => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self].filter(([id]) => ['(idle)', '(program)', '(garbage collector)'].includes(byId.get(id)!.callFrame.functionName));

const fnSelf = new Map<string, number>();
const pkgSelf = new Map<string, number>();
let under = 0;
for (const [id, t] of self) {
  const cf = byId.get(id)!.callFrame;
  const loc = where(cf.url);
  const key = `${cf.functionName || '(anonymous)'}  ${loc}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fnSelf.set(key, (fnSelf.get(key) ?? 0) + t);
  pkgSelf.set(pkg(loc), (pkgSelf.get(pkg(loc)) ?? 0) + t);
  if (values.under) {
    // Inclusive time under the filter: any ancestor frame matches.
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      if (values.under.startsWith('fn:') ? frame.functionName === values.under.slice(3) : frame.url.includes(values.under)) {
        under += t;
        break;
      }
    }
  }
}

const ms = (us: number) => `${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%`;
const print = (title: string, m: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${ms(v)}  ${k}\n`);
};
process.stdout.write(
  `total sampled ${(total / 1000).toFixed(1)} ms; ${idle.map(([id, t]) => `${byId.get(id)!.callFrame.functionName} ${ms(t).trim()}`).join(', ')}\n`,
);
if (values.under) process.stdout.write(`inclusive under "${values.under}": ${ms(under).trim()}\n`);
print('self time by package', pkgSelf, 15);
print(`self time by function (top ${top})`, fnSelf, top);
