// The bench's table: the same figures as the JSON, ratios last.
import type { BenchReport, LatencyFigures, ScenarioReport } from "./bench-report.js";

const NAME_WIDTH = 26;
const pad = (value: string | number, width: number) => String(value).padStart(width);
const ms = (value: number) => value.toFixed(1);

function latencyCells(latency: LatencyFigures): string {
  return [latency.p50Ms, latency.p90Ms, latency.p99Ms, latency.maxMs]
    .map((value) => pad(ms(value), 8))
    .join(" ");
}

/** The run as lines of text. */
export function reportTable(report: BenchReport): string[] {
  const { machine, scenarios } = report;
  const settings = report.settings as {
    scoreMsgBytes: number;
    workers: number;
    connections: number;
  };
  const lines: string[] = [];
  lines.push(
    `gradecast bench, ${report.startedAt}: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, ` +
      `load average ${machine.loadAverage.join(" ")}`,
  );
  lines.push(
    `${settings.workers} load-generator processes, ${settings.connections} gRPC connections, ` +
      `${settings.scoreMsgBytes}-byte score_msg`,
  );
  const { store } = report;
  lines.push(
    `${store.kind} store: ${store.preloadedScores} scores preloaded` +
      (store.preloadedScores > 0 ? ` in ${store.preloadS.toFixed(1)} s` : "") +
      `; ${(store.sizeBeforeBytes / 1e6).toFixed(1)} MB before the run, ${(store.sizeAfterBytes / 1e6).toFixed(1)} MB after`,
  );
  lines.push("");
  lines.push(
    `${"scenario".padEnd(NAME_WIDTH)} ${pad("calls", 7)} ${pad("errors", 6)} ${pad("calls/s", 8)} ` +
      `${pad("p50 ms", 8)} ${pad("p90 ms", 8)} ${pad("p99 ms", 8)} ${pad("max ms", 8)}`,
  );
  for (const scenario of scenarios) {
    const { load } = scenario;
    lines.push(
      `${scenario.id.padEnd(NAME_WIDTH)} ${pad(load.completed, 7)} ${pad(scenario.errors, 6)} ` +
        `${pad(load.callsPerS, 8)} ${latencyCells(load.latency)}`,
    );
  }

  const openLoops = scenarios.filter((scenario) => scenario.endToEnd !== undefined);
  if (openLoops.length > 0) {
    lines.push("");
    lines.push("end to end: SubmitScore call start -> the SDK subscriber receives the event");
    lines.push(
      `${"scenario".padEnd(NAME_WIDTH)} ${pad("events", 7)} ${pad("missing", 7)} ` +
        `${pad("p50 ms", 8)} ${pad("p90 ms", 8)} ${pad("p99 ms", 8)} ${pad("max ms", 8)}`,
    );
    for (const scenario of openLoops) {
      const endToEnd = scenario.endToEnd as NonNullable<ScenarioReport["endToEnd"]>;
      lines.push(
        `${scenario.id.padEnd(NAME_WIDTH)} ${pad(endToEnd.samples, 7)} ${pad(endToEnd.missing, 7)} ${latencyCells(endToEnd)}`,
      );
    }
  }

  const drain = scenarios.find((scenario) => scenario.drain !== undefined)?.drain;
  if (drain) {
    lines.push("");
    lines.push(
      `outbox drain: ${drain.events} events; NATS back -> first event ${drain.reconnectS.toFixed(2)} s, ` +
        `then all in ${drain.drainS.toFixed(2)} s: ${drain.eventsPerS} events/s`,
    );
  }

  lines.push("");
  lines.push("gradecast process (one Node process: gRPC, SQLite worker thread, NATS client)");
  lines.push(
    `${"scenario".padEnd(NAME_WIDTH)} ${pad("CPU s", 7)} ${pad("CPU s/1k calls", 14)} ${pad("peak RSS MB", 11)}`,
  );
  const usageRows: Array<[string, NonNullable<ScenarioReport["server"]>]> = [];
  for (const scenario of scenarios) {
    if (scenario.server) {
      usageRows.push([scenario.drain ? "outbox-drain accept" : scenario.id, scenario.server]);
    }
    if (scenario.drain) usageRows.push(["outbox-drain relay", scenario.drain.server]);
  }
  for (const [name, usage] of usageRows) {
    lines.push(
      `${name.padEnd(NAME_WIDTH)} ${pad(usage.cpuS.toFixed(2), 7)} ${pad(usage.cpuSPer1000Calls.toFixed(3), 14)} ${pad(usage.peakRssMb.toFixed(1), 11)}`,
    );
  }
  lines.push(`peak RSS over the run: ${report.serverPeakRssMb.toFixed(1)} MB`);

  const problems = scenarios.flatMap((scenario) =>
    scenario.problems.map((problem) => `${scenario.id}: ${problem}`),
  );
  if (problems.length > 0) {
    lines.push("");
    lines.push("problems:");
    for (const problem of problems) lines.push(`  ${problem}`);
  }

  lines.push("");
  lines.push(
    `SubmitScore / echo throughput (closed loop): ${report.ratios.submitScoreOverEcho.toFixed(2)}`,
  );
  lines.push(
    `outbox drain / raw JetStream publish rate:   ${report.ratios.drainOverRawPublish.toFixed(2)}`,
  );
  return lines;
}
