import { describe, expect, it } from "vitest";
import { formatCampaign, runChaosCampaign } from "../chaos/index.js";

/**
 * The short form of `npm run chaos` (README "Fault campaign"): one nats-server, SQLite, 16 s of
 * load with two faults of each kind. The long form runs every form for longer.
 */
describe("the short fault campaign (single nats-server, SQLite)", () => {
  it("kill -9 of gradecast and NATS and a stalled NATS under load lose, duplicate and invent no score, and it ends SERVING", async () => {
    const progress: string[] = [];
    const report = await runChaosCampaign({
      form: { nats: "single", store: "sqlite" },
      durationMs: 16_000,
      concurrency: 8,
      maxCallsPerS: 100,
      seed: 12,
      faults: {
        gapMs: 2_000,
        warmupMs: 1_000,
        gradecastDownMs: [0, 300],
        natsDownMs: [300, 1_000],
        natsStopMs: [300, 1_000],
        // Faults one at a time, so the counts below hold for this seed.
        overlapChance: 0,
      },
      log: (line) => progress.push(line),
    });
    const summary = `${formatCampaign(report)}\n${progress.join("\n")}`;

    expect(report.failure, summary).toBeUndefined();
    expect(report.faultCounts["gradecast-kill9"], summary).toBeGreaterThanOrEqual(2);
    expect(report.faultCounts["nats-kill9"], summary).toBeGreaterThanOrEqual(2);
    expect(report.faultCounts["nats-stop"], summary).toBeGreaterThanOrEqual(2);
    expect(report.verdict?.ok, summary).toBeGreaterThan(500);
    expect(report.verdict?.ok, summary).toBe(report.verdict?.calls);
    expect(report.verdict?.lost, summary).toEqual([]);
    expect(report.verdict?.duplicated, summary).toEqual([]);
    expect(report.verdict?.unexplained, summary).toEqual([]);
    expect(report.verdict?.misanswered, summary).toEqual([]);
    expect(report.unexpectedExits, summary).toEqual([]);
    expect(report.isServingAtEnd, summary).toBe(true);
    expect(report.isPassed, summary).toBe(true);
  }, 180_000);
});
