/** Number formatting and plain-text tables for the printed report. */

type N = number | null | undefined;

const missing = (n: N): n is null | undefined => n == null || Number.isNaN(n);

export function fmt(n: N, digits = 0): string {
  return missing(n) ? "-" : n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Microseconds, switching to ms from 10 ms and to s from 1 s up. */
export function us(n: N): string {
  if (missing(n)) return "-";
  if (n >= 1_000_000) return `${fmt(n / 1e6, 2)} s`;
  return n >= 10_000 ? `${fmt(n / 1000, 1)} ms` : `${fmt(n)} µs`;
}

export function rate(n: N): string {
  if (missing(n)) return "-";
  return n >= 10_000 ? `${fmt(n / 1000, 1)}k` : fmt(n);
}

export const mbit = (n: N) => (missing(n) ? "-" : n >= 1000 ? `${fmt(n / 1000, 2)} Gbit/s` : `${fmt(n)} Mbit/s`);
export const pct = (n: N, digits = 1) => (missing(n) ? "-" : `${fmt(n, digits)} %`);
export const mib = (n: N) => (missing(n) ? "-" : `${fmt(n, 1)} MiB`);
export const offered = (r: number) => (r === 0 ? "full speed" : `${rate(r)}/s`);

/** Columns padded to their widest cell; "r" columns right-aligned. Rows are indented by two spaces. */
export function table(rows: string[][], align: string): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) =>
    "  " +
    r.map((cell, c) => (align[c] === "r" ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd()
  );
}
