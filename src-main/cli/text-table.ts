/** Aligned text tables and number formats for the CLI's human output. */

export type Cell = string | number | null | undefined;

/**
 * Columns padded to their widest cell; numbers (and cells that read as numbers) right-aligned,
 * text left-aligned; null/undefined shown as `—`.
 */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => r[i] === null || r[i] === undefined || typeof r[i] === 'number' || /^[-+−]?[\d.]+(%| s)?( \[.*\])?$/.test(String(r[i]))));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '─'.repeat(w))), ...text.map(line)].join('\n');
}

function cellText(c: Cell): string {
  if (c === null || c === undefined) return '—';
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : fixed(c, 3);
  return c;
}

/** `x` with `digits` decimals, a real minus sign kept ASCII for copy-paste. */
export function fixed(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return x.toFixed(digits);
}

/** 0.4213 → `42.1%`. */
export function percent(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return `${(x * 100).toFixed(digits)}%`;
}

/** An estimate with its interval: `0.421 [0.310, 0.530]`. */
export function withInterval(x: number | null | undefined, lo: number | null | undefined, hi: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined) return '—';
  return lo === null || lo === undefined || hi === null || hi === undefined ? fixed(x, digits) : `${fixed(x, digits)} [${fixed(lo, digits)}, ${fixed(hi, digits)}]`;
}

/** 12_345_678 bytes → `11.8 MiB`. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** 83_000 ms → `1m 23s`; under a minute `12.3 s`. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}
