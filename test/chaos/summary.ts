import type { CampaignReport } from "./campaign.js";
import { FAULT_KINDS, type FaultKind, formName } from "./chaos-options.js";

/** Findings listed per kind under a summary line; the rest is counted. */
const MAX_FINDINGS_SHOWN = 5;

const FAULT_LABELS: Record<FaultKind, string> = {
  "gradecast-kill9": "gradecast kill -9",
  "nats-kill9": "NATS kill -9",
  "nats-stop": "NATS SIGSTOP",
};

/** One line for a campaign, then one line per finding (a few of each kind). */
export function formatCampaign(report: CampaignReport): string {
  const verdict = report.verdict;
  const head = `${report.isPassed ? "PASS" : "FAIL"} ${formName(report.form)}:`;
  const load = report.loadMs === undefined ? "" : `load ${seconds(report.loadMs)} of `;
  const timing = `${load}${seconds(report.elapsedMs)}, seed ${report.seed}`;
  if (!verdict) return `${head} did not finish (${timing})\n  ${report.failure ?? "no verdict"}`;
  const serving = report.isServingAtEnd
    ? `SERVING ${seconds(report.servingAfterMs ?? 0)} after the last fault`
    : `NOT SERVING at the end (${report.lastReadiness ?? "?"})`;
  const line = [
    `${head} ${count(verdict.calls)} calls, ${count(verdict.ok)} OK (${count(verdict.answeredUnpublished)} answered before publish; ${count(verdict.attemptsCutByDeath)} attempts cut by a kill and retried, ${count(verdict.committedBeforeCut)} of those calls committed before it)`,
    `faults ${faultSummary(report.faultCounts)}`,
    `lost ${verdict.lost.length}, duplicated ${verdict.duplicated.length}, unexplained ${verdict.unexplained.length}`,
    `worst OK-to-published ${seconds(verdict.worstDelayMs)}${worstDelayWhen(report)}`,
    serving,
    timing,
  ].join("; ");
  const findings: [string, readonly string[]][] = [
    ["lost", verdict.lost],
    ["duplicated", verdict.duplicated],
    ["unexplained", verdict.unexplained],
    ["misanswered", verdict.misanswered],
    ["error", verdict.errors],
    ["unanswered", verdict.unanswered],
    ["gradecast exited by itself", report.unexpectedExits],
    ["campaign failed", report.failure === undefined ? [] : [report.failure]],
  ];
  const details = findings.flatMap(([label, items]) => [
    ...items.slice(0, MAX_FINDINGS_SHOWN).map((item) => `  ${label}: ${firstLine(item)}`),
    ...(items.length > MAX_FINDINGS_SHOWN
      ? [`  ${label}: ... and ${items.length - MAX_FINDINGS_SHOWN} more`]
      : []),
  ]);
  if (verdict.attributedToUnanswered > 0) {
    details.push(
      `  ${verdict.attributedToUnanswered} stream messages belong to calls that got no answer`,
    );
  }
  return [line, ...details].join("\n");
}

/** The sums over every campaign of a run. */
export function formatTotals(reports: readonly CampaignReport[]): string {
  const failed = reports.filter((report) => !report.isPassed).length;
  const verdicts = reports.flatMap((report) => (report.verdict ? [report.verdict] : []));
  const sum = (pick: (verdict: (typeof verdicts)[number]) => number) =>
    verdicts.reduce((total, verdict) => total + pick(verdict), 0);
  const faultCounts = Object.fromEntries(
    FAULT_KINDS.map((kind) => [kind, reports.reduce((n, r) => n + r.faultCounts[kind], 0)]),
  ) as Record<FaultKind, number>;
  const worstDelayMs = Math.max(0, ...verdicts.map((verdict) => verdict.worstDelayMs));
  return [
    `${failed === 0 ? "PASS" : "FAIL"} total: ${reports.length} forms${failed ? ` (${failed} failed)` : ""}, ${count(sum((v) => v.calls))} calls, ${count(sum((v) => v.ok))} OK`,
    `faults ${faultSummary(faultCounts)}`,
    `lost ${sum((v) => v.lost.length)}, duplicated ${sum((v) => v.duplicated.length)}, unexplained ${sum((v) => v.unexplained.length)}`,
    `worst OK-to-published ${seconds(worstDelayMs)}`,
    `SERVING at the end ${reports.filter((report) => report.isServingAtEnd).length} of ${reports.length}`,
    seconds(reports.reduce((total, report) => total + report.elapsedMs, 0)),
  ].join("; ");
}

/** When the worst-delayed event was answered, to line it up with the faults' log lines. */
function worstDelayWhen(report: CampaignReport): string {
  const answeredAtMs = report.verdict?.worstDelayAnsweredAtMs;
  if (answeredAtMs === undefined || report.loadStartedAtMs === undefined) return "";
  return ` (answered ${seconds(answeredAtMs - report.loadStartedAtMs)} into the load)`;
}

function faultSummary(counts: Readonly<Record<FaultKind, number>>): string {
  const total = FAULT_KINDS.reduce((sum, kind) => sum + counts[kind], 0);
  const parts = FAULT_KINDS.map((kind) => `${FAULT_LABELS[kind]} ${counts[kind]}`);
  return `${total} (${parts.join(", ")})`;
}

function count(value: number): string {
  return value.toLocaleString("en-US");
}

function seconds(ms: number): string {
  return `${(ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
