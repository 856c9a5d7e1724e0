// A grouped bar chart as a standalone SVG: one group per phase (or shard count), one bar per system, a labelled
// logarithmic or linear y axis, value labels, a legend and notes under each group (the ratios).

export interface ChartSpec {
  title: string;
  subtitle?: string;
  /** x-axis groups, e.g. phases */
  groups: string[];
  /** one line of small text under each group label (e.g. ratios), optional */
  groupNotes?: string[];
  /** bar series, e.g. systems */
  series: string[];
  /** values[group][series]; undefined leaves a gap */
  values: (number | undefined)[][];
  /** one colour per series; default: by system name, else a palette */
  colors?: string[];
  yLabel: string;
  log: boolean;
  footer?: string;
}

const PALETTE: Record<string, string> = {
  sharded: '#2563eb',
  plain: '#6b7280',
  handrolled: '#f59e0b',
  sqlalchemy: '#10b981',
};
const FALLBACK = ['#2563eb', '#f59e0b', '#6b7280', '#10b981', '#db2777', '#7c3aed'];

function colorOf(spec: ChartSpec, series: string, i: number): string {
  return spec.colors?.[i] ?? PALETTE[series] ?? FALLBACK[i % FALLBACK.length]!;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1.2k, 35k, 1.1M: short labels for bars and ticks. */
export function short(n: number): string {
  const a = Math.abs(n);
  const f = (v: number, unit: string) => `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1).replace(/\.0$/, '') : v.toFixed(2).replace(/\.?0+$/, '')}${unit}`;
  if (a >= 1e6) return f(n / 1e6, 'M');
  if (a >= 1e3) return f(n / 1e3, 'k');
  return f(n, '');
}

function niceStep(max: number): number {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

export function renderChart(spec: ChartSpec): string {
  const W = 980;
  const H = 560;
  const m = { top: 92, right: 24, bottom: 104, left: 86 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const all = spec.values.flat().filter((v): v is number => typeof v === 'number' && v > 0 && Number.isFinite(v));
  const vmax = Math.max(...all, 1);
  const vmin = Math.min(...all, vmax);

  let y: (v: number) => number;
  const ticks: { v: number; major: boolean }[] = [];
  if (spec.log) {
    const lo = 10 ** Math.floor(Math.log10(vmin));
    const hi = 10 ** Math.ceil(Math.log10(vmax * 1.35));
    const L = Math.log10(lo);
    const R = Math.log10(hi);
    y = v => m.top + plotH - ((Math.log10(Math.max(v, lo)) - L) / (R - L)) * plotH;
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      ticks.push({ v: d, major: true });
      if (d < hi) for (const k of [2, 5]) ticks.push({ v: d * k, major: false });
    }
  } else {
    const step = niceStep(vmax * 1.15);
    const hi = Math.ceil((vmax * 1.15) / step) * step;
    y = v => m.top + plotH - (v / hi) * plotH;
    for (let v = 0; v <= hi + step / 2; v += step) ticks.push({ v, major: true });
  }

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="30" text-anchor="middle" font-size="20" font-weight="bold" fill="#111827">${esc(spec.title)}</text>`,
  );
  if (spec.subtitle) out.push(`<text x="${W / 2}" y="52" text-anchor="middle" font-size="13" fill="#4b5563">${esc(spec.subtitle)}</text>`);

  for (const t of ticks) {
    const ty = y(t.v);
    out.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="${t.major ? '#d1d5db' : '#eef0f3'}" stroke-width="1"/>`,
    );
    if (t.major || spec.log) {
      out.push(
        `<text x="${m.left - 8}" y="${(ty + 4).toFixed(1)}" text-anchor="end" font-size="${t.major ? 12 : 10}" fill="${t.major ? '#374151' : '#9ca3af'}">${short(t.v)}</text>`,
      );
    }
  }
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}" stroke="#374151"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${m.top + plotH}" y2="${m.top + plotH}" stroke="#374151"/>`);
  const axis = `${spec.yLabel} (${spec.log ? 'log scale' : 'linear scale'})`;
  out.push(`<text transform="translate(22 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#374151">${esc(axis)}</text>`);

  const groupW = plotW / Math.max(1, spec.groups.length);
  const n = spec.series.length;
  const barW = Math.min(64, (groupW * 0.78) / Math.max(1, n));
  const valueFont = Math.max(8, Math.min(11, barW / 3.1)).toFixed(1);
  spec.groups.forEach((g, gi) => {
    const gx = m.left + gi * groupW + groupW / 2;
    const x0 = gx - (barW * n) / 2;
    spec.series.forEach((s, si) => {
      const v = spec.values[gi]?.[si];
      if (typeof v !== 'number' || !(v > 0)) return;
      const top = y(v);
      const color = colorOf(spec, s, si);
      const bx = x0 + si * barW;
      out.push(
        `<rect x="${(bx + 2).toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(m.top + plotH - top).toFixed(1)}" fill="${color}" rx="2"><title>${esc(`${s} · ${g}: ${v.toFixed(1)}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(bx + barW / 2).toFixed(1)}" y="${(top - 5).toFixed(1)}" text-anchor="middle" font-size="${valueFont}" fill="#111827">${short(v)}</text>`,
      );
    });
    out.push(`<text x="${gx.toFixed(1)}" y="${m.top + plotH + 22}" text-anchor="middle" font-size="14" font-weight="bold" fill="#111827">${esc(g)}</text>`);
    const note = spec.groupNotes?.[gi];
    if (note) {
      note.split('\n').forEach((line, li) => {
        out.push(`<text x="${gx.toFixed(1)}" y="${m.top + plotH + 40 + li * 15}" text-anchor="middle" font-size="11.5" fill="#1f2937">${esc(line)}</text>`);
      });
    }
  });

  // Legend: one row under the subtitle, centred, so it never covers a bar.
  const itemW = spec.series.map(s => 30 + s.length * 7.5);
  let lx = W / 2 - itemW.reduce((a, b) => a + b, 0) / 2;
  spec.series.forEach((s, si) => {
    const ly = 72;
    out.push(`<rect x="${lx.toFixed(1)}" y="${ly - 10}" width="14" height="14" fill="${colorOf(spec, s, si)}" rx="2"/>`);
    out.push(`<text x="${(lx + 20).toFixed(1)}" y="${ly + 2}" font-size="13" fill="#111827">${esc(s)}</text>`);
    lx += itemW[si]!;
  });
  if (spec.footer) out.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle" font-size="11" fill="#6b7280">${esc(spec.footer)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
