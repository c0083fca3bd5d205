/** The printed report: machine, every row that ran, memory, then every goal met or not. */
import { evaluateGoals, type Goal, verdict } from "./goals.ts";
import { fmt } from "./lib/table.ts";
import type { BenchResult } from "./result.ts";
import { renderAbuse } from "./rows/abuse.ts";
import { renderGoodput } from "./rows/goodput.ts";
import { renderLossy } from "./rows/lossy.ts";
import { renderMemory } from "./rows/memory.ts";
import { renderNaive } from "./rows/naive.ts";
import { renderNeighbour } from "./rows/neighbour.ts";
import { renderRtt } from "./rows/rtt.ts";
import { renderScale } from "./rows/scale.ts";
import { renderTcpBulk, renderTcpRr } from "./rows/tcp.ts";

export function renderGoals(goals: Goal[]): string[] {
  const out = ["Goals (issue 9; 8.8 from issue 8; L is the bench's own check): this run against its own anchors"];
  for (const g of goals) {
    out.push(`  ${verdict(g.met).padEnd(7)}  ${g.id.padEnd(3)} ${g.title}: ${g.measured}`);
    if (g.measured.startsWith("not run")) continue;
    out.push(`  ${"".padEnd(7)}  ${"".padEnd(3)} target ${g.target}`);
    out.push(`  ${"".padEnd(7)}  ${"".padEnd(3)} anchor ${g.anchor} · before: ${g.before}`);
  }
  return out;
}

export function renderReport(r: BenchResult, goals: Goal[]): string {
  const m = r.machine;
  const out = [
    "",
    `ztna bench ${r.timestamp} (${r.durationSeconds} s)`,
    `machine: ${m.cores} cores (${m.cpuModel}), bun ${m.bun}, linux ${m.kernel}, ${fmt(Number(m.memTotalMiB))} MiB RAM`,
  ];
  const load = Math.max(Number(m.loadAverageAtStart), Number(m.loadAverageAtEnd));
  if (load > Number(m.cores) / 2) {
    out.push(
      `WARNING: 1-min load average ${m.loadAverageAtStart} at start, ${m.loadAverageAtEnd} at end: other work competed for the CPU; figures are pessimistic.`,
    );
  }
  const sections: string[][] = [];
  const { rows } = r;
  if (rows.rtt) sections.push(renderRtt(rows.rtt));
  if (rows.goodput) sections.push(renderGoodput(rows.goodput));
  if (rows.neighbour) sections.push(renderNeighbour(rows.neighbour));
  if (rows["tcp-bulk"]) sections.push(renderTcpBulk(rows["tcp-bulk"]));
  if (rows["tcp-rr"]) sections.push(renderTcpRr(rows["tcp-rr"]));
  if (rows.lossy) sections.push(renderLossy(rows.lossy));
  if (r.memory) sections.push(renderMemory(r.memory));
  if (rows.scale) sections.push(renderScale(rows.scale));
  if (rows.abuse) sections.push(renderAbuse(rows.abuse));
  if (rows.naive) sections.push(renderNaive(rows.naive));
  for (const [row, error] of Object.entries(r.errors)) sections.push([`Row ${row} FAILED: ${error}`]);
  sections.push(renderGoals(goals));
  for (const s of sections) out.push("", ...s);
  out.push("");
  return out.join("\n");
}

export { evaluateGoals };
