// Closed-loop SubmitScore throughput against a trivial grpc-js echo baseline:
//   npm run bench:throughput -- --calls 10000 --concurrency 64
// Starts its own nats-server (temp store), a gradecast process (SQLite in a temp
// dir) and an echo server, then drives each with the same request bytes.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { SubmitScoreRequest } from "../src/contract/index.js";
import { ECHO_METHOD } from "./echo-server.js";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "64" },
    // Open-loop SubmitScore at these rates (calls/s), each for --duration seconds; "" for none.
    rates: { type: "string", default: "" },
    duration: { type: "string", default: "10" },
  },
});
const openLoopRates = values.rates.split(",").filter(Boolean).map(Number);
const openLoopDurationS = Number(values.duration);
/** Open loop stops issuing (and counts the call as shed) past this many in flight. */
const MAX_IN_FLIGHT = 4096;
const totalCalls = Number(values.calls);
const concurrency = Number(values.concurrency);
const scoreMsg = JSON.stringify({
  correct: false,
  score: 0.7,
  msg: `<div class="result"><p>7 of 10 tests passed.</p><pre>${"x".repeat(1900)}</pre></div>`,
});

function requestBytes(submissionId: number): Buffer {
  return Buffer.from(
    SubmitScoreRequest.encode({
      scoreData: {
        pointsPossible: 10,
        pointsEarned: 7,
        courseId: "course-v1:edX+DemoX+Demo_Course",
        scoreMsg,
        submissionId: BigInt(submissionId),
        userId: "106ecd878f4148a5cabb6bbb0979b730",
        moduleId:
          "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
        queueKey: `key-${submissionId}`,
        queueName: "python-grader",
      },
    }).finish(),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Starts a process; its stderr is shown only when `showErrors` (nats-server logs there). */
function startChild(command: string, args: string[], showErrors = true): ChildProcess {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  if (showErrors) child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  return child;
}

async function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs = 15_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}`)),
      timeoutMs,
    );
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = buffered.split("\n").find((line) => pattern.test(line));
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
  });
}

interface LoadResult {
  callsPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
}

/** Drives `method` closed-loop: `concurrency` calls in flight until `totalCalls` completed. */
/** A ready client and a `call` that records each call's latency and failure. */
async function recordingClient(port: number, method: string) {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
  );
  const latencies: number[] = [];
  const tally = { errors: 0 };
  const call = (bytes: Buffer) =>
    new Promise<void>((resolve) => {
      const started = process.hrtime.bigint();
      client.makeUnaryRequest(
        method,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        new Metadata(),
        { deadline: Date.now() + 30_000 },
        (error) => {
          if (error) tally.errors += 1;
          latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
          resolve();
        },
      );
    });
  return { client, latencies, tally, call };
}

function summarize(
  latencies: number[],
  calls: number,
  elapsedS: number,
  errors: number,
): LoadResult {
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    callsPerS: Math.round(calls / elapsedS),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: latencies[latencies.length - 1] ?? 0,
    errors,
  };
}

/**
 * Offers `ratePerS` calls per second for `durationS`, whatever the answers do
 * (open loop), then waits for the last answers. Calls over MAX_IN_FLIGHT are
 * not sent and count as errors.
 */
async function openLoop(
  port: number,
  method: string,
  firstId: number,
  ratePerS: number,
  durationS: number,
): Promise<LoadResult> {
  const { client, latencies, tally, call } = await recordingClient(port, method);
  const pending = new Set<Promise<void>>();
  let sent = 0;
  const started = performance.now();
  const total = Math.round(ratePerS * durationS);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * ratePerS));
      while (sent < due) {
        sent += 1;
        if (pending.size >= MAX_IN_FLIGHT) {
          tally.errors += 1;
          continue;
        }
        const promise = call(requestBytes(firstId + sent));
        pending.add(promise);
        void promise.then(() => pending.delete(promise));
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  await Promise.all(pending);
  const elapsedS = (performance.now() - started) / 1000;
  client.close();
  return summarize(latencies, latencies.length, elapsedS, tally.errors);
}

async function closedLoop(port: number, method: string, firstId: number): Promise<LoadResult> {
  const { client, latencies, tally, call } = await recordingClient(port, method);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < totalCalls) {
        next += 1;
        await call(requestBytes(firstId + next));
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  client.close();
  return summarize(latencies, totalCalls, elapsedS, tally.errors);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "gradecast-bench-"));
  const children: ChildProcess[] = [];
  try {
    const natsPort = await freePort();
    const nats = startChild(
      process.env.NATS_SERVER_BIN ?? "nats-server",
      ["-js", "-a", "127.0.0.1", "-p", String(natsPort), "-sd", join(dir, "nats")],
      false,
    );
    children.push(nats);
    const grpcPort = await freePort();
    // GRADECAST_NODE_ARGS lets a profiling run add e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
    const nodeArgs = (process.env.GRADECAST_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const gradecast = startChild(process.execPath, [
      ...nodeArgs,
      join(import.meta.dirname, "../src/cli/run.js"),
      "serve",
      "--listen",
      `127.0.0.1:${grpcPort}`,
      "--nats-url",
      `nats://127.0.0.1:${natsPort}`,
      "--data-dir",
      join(dir, "data"),
      "--log-level",
      "info",
      "--metrics-listen",
      "127.0.0.1:0",
      // The bench client sends no token: it measures the intake path, not grader auth.
      "--insecure-no-auth",
      // GRADECAST_SERVE_ARGS adds serve flags, e.g. `--publish-wait 0ms`.
      ...(process.env.GRADECAST_SERVE_ARGS ?? "").split(" ").filter(Boolean),
    ]);
    children.push(gradecast);
    await waitForLine(gradecast, /stream ready/);
    const echo = startChild(process.execPath, [join(import.meta.dirname, "echo-server.js")]);
    children.push(echo);
    const echoPort = (JSON.parse(await waitForLine(echo, /"port"/)) as { port: number }).port;

    // Warm both up (JIT, connections, SQLite pages) before measuring.
    await closedLoop(echoPort, ECHO_METHOD, 0);
    const echoResult = await closedLoop(echoPort, ECHO_METHOD, 0);
    const submitResult = await closedLoop(
      grpcPort,
      "/gradecast.v1.ScoreService/SubmitScore",
      1_000_000,
    );

    const row = (name: string, r: LoadResult) =>
      `${name.padEnd(12)} ${String(r.callsPerS).padStart(8)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${r.maxMs.toFixed(2).padStart(8)} ${String(r.errors).padStart(6)}`;
    console.log(
      `closed loop: ${totalCalls} calls, ${concurrency} in flight, ${scoreMsg.length}-byte score_msg`,
    );
    console.log(
      `${"".padEnd(12)} ${"calls/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"max ms".padStart(8)} ${"errors".padStart(6)}`,
    );
    console.log(row("echo", echoResult));
    console.log(row("SubmitScore", submitResult));
    console.log(
      `SubmitScore / echo throughput: ${(submitResult.callsPerS / echoResult.callsPerS).toFixed(2)}`,
    );
    let errors = submitResult.errors + echoResult.errors;
    if (openLoopRates.length > 0) {
      console.log(`open loop: SubmitScore at a fixed offered rate, ${openLoopDurationS} s each`);
      console.log(
        `${"offered/s".padEnd(12)} ${"calls/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"max ms".padStart(8)} ${"errors".padStart(6)}`,
      );
      let firstId = 2_000_000;
      for (const rate of openLoopRates) {
        const result = await openLoop(
          grpcPort,
          "/gradecast.v1.ScoreService/SubmitScore",
          firstId,
          rate,
          openLoopDurationS,
        );
        firstId += 1_000_000;
        errors += result.errors;
        console.log(row(String(rate), result));
      }
    }
    process.exitCode = errors > 0 ? 1 : 0;
  } finally {
    // Stop gradecast first (it drains into NATS), then the rest; wait for each to exit.
    for (const child of children.reverse()) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
// grpc-js may keep timers alive after the run; the figures are printed, so leave.
process.exit();
