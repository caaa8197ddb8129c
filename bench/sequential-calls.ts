// `node dist/bench/sequential-calls.js --address <host:port> [--method <path>] [--calls n]
// [--pause-ms n]`: one unary call at a time, with a pause between calls, against a running
// gradecast (SubmitScore, `--insecure-no-auth`) or the bench's echo server
// (`node dist/bench/echo-server.js` prints its port and method). It prints the latency
// percentiles of a call that meets no queue: the floor the open-loop latencies sit on.
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { Command, InvalidArgumentError } from "commander";
import { latencyFigures } from "./bench-report.js";
import { submitScoreRequestBytes } from "./score-request.js";

const CONNECT_TIMEOUT_MS = 10_000;
const CALL_DEADLINE_MS = 30_000;

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new InvalidArgumentError("must be a positive integer");
  }
  return number;
}

const options = new Command("sequential-calls")
  .description("one call at a time with a pause between calls; prints latency percentiles")
  .requiredOption("--address <host:port>", "the gRPC server")
  .option("--method <path>", "the method", "/gradecast.v1.ScoreService/SubmitScore")
  .option("--calls <n>", "calls", positiveInteger, 200)
  .option("--pause-ms <n>", "pause after each answer", positiveInteger, 20)
  .option("--first-submission <n>", "submission id of the first call", positiveInteger, 1)
  .parse()
  .opts<{
    address: string;
    method: string;
    calls: number;
    pauseMs: number;
    firstSubmission: number;
  }>();

const client = new Client(options.address, credentials.createInsecure());
await new Promise<void>((resolve, reject) =>
  client.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (error) =>
    error ? reject(error) : resolve(),
  ),
);
const identity = (bytes: Buffer) => bytes;
const latenciesMs: number[] = [];
for (let index = 0; index < options.calls; index += 1) {
  const bytes = submitScoreRequestBytes(options.firstSubmission + index);
  const startedAt = performance.now();
  await new Promise<void>((resolve, reject) =>
    client.makeUnaryRequest(
      options.method,
      identity,
      identity,
      bytes,
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error) => (error ? reject(error) : resolve()),
    ),
  );
  latenciesMs.push(performance.now() - startedAt);
  await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
}
client.close();
const figures = latencyFigures(Float64Array.from(latenciesMs));
console.log(
  `${options.method}: ${figures.samples} calls, one at a time, ${options.pauseMs} ms apart: p50 ${figures.p50Ms} ms, p90 ${figures.p90Ms} ms, p99 ${figures.p99Ms} ms, max ${figures.maxMs} ms`,
);
