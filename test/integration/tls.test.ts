import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/cli/config-values.js";
import { parseGrpcTls } from "../../src/cli/credential-values.js";
import { addGrader } from "../../src/cli/credentials-command.js";
import { main } from "../../src/cli/main.js";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { startGradecast, streamReadyWithin, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates.js";

let nats: NatsServerHandle;
let certificates: TestCertificates;
const started: TestGradecast[] = [];
const clients: ScoreClient[] = [];
const natsServers: NatsServerHandle[] = [];

beforeAll(async () => {
  [nats, certificates] = await Promise.all([startNatsServer(), makeTestCertificates()]);
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const gradecast of started) await gradecast.cleanup();
  for (const server of natsServers) await server.cleanup();
  await nats?.cleanup();
  await certificates?.cleanup();
});

/** A gradecast serving TLS (mTLS when `isMutual`), its stream set up. */
async function startTlsGradecast(
  isMutual: boolean,
  graders?: { credentialsPath: string; streamName: string },
): Promise<TestGradecast> {
  const name = graders?.streamName ?? (isMutual ? "GRADECAST_MTLS" : "GRADECAST_TLS");
  const gradecast = await startGradecast(nats.url, {
    ...(graders ? { auth: { kind: "tokens", credentialsPath: graders.credentialsPath } } : {}),
    tls: {
      certPem: certificates.serverCert,
      keyPem: certificates.serverKey,
      ...(isMutual ? { clientCaPem: certificates.ca } : {}),
    },
    stream: {
      name,
      deadLetterName: `${name}_DLQ`,
      subjectPrefix: name.toLowerCase().replaceAll("_", "-"),
      duplicateWindowMs: 120_000,
      maxAgeMs: 0,
      maxBytes: -1,
      replicas: 1,
    },
    clientCredentials: credentials.createSsl(
      certificates.ca,
      isMutual ? certificates.clientKey : null,
      isMutual ? certificates.clientCert : null,
    ),
  });
  started.push(gradecast);
  await gradecast.server.streamReady;
  return gradecast;
}

function clientOf(gradecast: TestGradecast, channel: ReturnType<typeof credentials.createSsl>) {
  const client = createScoreClient(gradecast.address, { credentials: channel, deadlineMs: 5_000 });
  clients.push(client);
  return client;
}

describe("gRPC over TLS", () => {
  it("takes a score from a client that trusts the CA, and refuses plaintext with UNAVAILABLE", async () => {
    const gradecast = await startTlsGradecast(false);

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8101n }));
    expect(response).toMatchObject({ replayed: false, published: true });

    const plaintext = clientOf(gradecast, credentials.createInsecure());
    await expect(
      plaintext.submitScore(sampleScoreData({ submissionId: 8102n })),
    ).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it("with a client CA, refuses a client without a certificate and takes one with it", async () => {
    const gradecast = await startTlsGradecast(true);

    const anonymous = clientOf(gradecast, credentials.createSsl(certificates.ca));
    await expect(
      anonymous.submitScore(sampleScoreData({ submissionId: 8201n })),
    ).rejects.toMatchObject({ code: status.UNAVAILABLE });

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8202n }));
    expect(response).toMatchObject({ replayed: false, published: true });
    expect((await gradecast.client.getScore(8202n)).event?.metadata?.id).toBe(response.eventId);

    const printed = await runCli([
      "get-score",
      "--server",
      gradecast.address,
      "--submission-id",
      "8202",
      "--tls-ca",
      certificates.caPath,
      "--tls-cert",
      certificates.clientCertPath,
      "--tls-key",
      certificates.clientKeyPath,
    ]);
    expect(printed.exitCode).toBe(0);
    expect(JSON.parse(printed.stdout)).toMatchObject({
      event: { metadata: { id: response.eventId } },
      published: true,
    });
  });

  it("under mTLS, a client certificate whose subject is a grader's name stands in for its token", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gradecast-mtls-graders-"));
    const credentialsPath = join(dir, "credentials.json");
    try {
      const token = await addGrader({
        credentialsPath,
        graderName: "python-grader-1",
        queues: ["python-grader"],
        isReplacing: false,
      });
      const gradecast = await startTlsGradecast(true, {
        credentialsPath,
        streamName: "GRADECAST_MTLS_GRADERS",
      });
      const channelOf = (key: Buffer, cert: Buffer) =>
        credentials.createSsl(certificates.ca, key, cert);

      const grader = clientOf(
        gradecast,
        channelOf(certificates.graderKey, certificates.graderCert),
      );
      const accepted = await grader.submitScore(sampleScoreData({ submissionId: 8301n }));
      expect(accepted).toMatchObject({ replayed: false, published: true });
      const stored = await grader.getScore(8301n);
      expect(stored.event?.metadata?.source).toMatch(/\/python-grader-1$/);
      await expect(
        grader.submitScore(sampleScoreData({ submissionId: 8302n, queueName: "java-8" })),
      ).rejects.toMatchObject({ code: status.PERMISSION_DENIED });

      const strangerChannel = channelOf(certificates.strangerKey, certificates.strangerCert);
      const stranger = clientOf(gradecast, strangerChannel);
      await expect(
        stranger.submitScore(sampleScoreData({ submissionId: 8303n })),
      ).rejects.toMatchObject({ code: status.UNAUTHENTICATED, message: /unknown-grader/ });
      // A token, when sent, is what counts, whatever the certificate says.
      const withToken = createScoreClient(gradecast.address, {
        credentials: strangerChannel,
        token,
        deadlineMs: 5_000,
      });
      clients.push(withToken);
      expect(await withToken.submitScore(sampleScoreData({ submissionId: 8303n }))).toMatchObject({
        replayed: false,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("NATS over TLS", () => {
  it("connects to a TLS-only nats-server trusting the CA given as nats.caPem", async () => {
    const tlsNats = await startNatsServer({
      extraArgs: [
        "--tls",
        "--tlscert",
        certificates.serverCertPath,
        "--tlskey",
        certificates.serverKeyPath,
      ],
    });
    natsServers.push(tlsNats);
    const gradecast = await startGradecast(tlsNats.url, {
      nats: {
        servers: tlsNats.url,
        reconnectTimeWaitMs: 200,
        connectTimeoutMs: 1_000,
        caPem: certificates.ca.toString("utf8"),
      },
    });
    started.push(gradecast);
    expect(await streamReadyWithin(gradecast, 60_000)).toBe("ready");

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8301n }));
    expect(response).toMatchObject({ replayed: false, published: true });
  });
});

/** Runs the CLI in-process and returns its exit code and what it wrote to stdout. */
async function runCli(args: string[]): Promise<{ exitCode: number; stdout: string }> {
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    return { exitCode: await main(["node", "gradecast", ...args]), stdout: chunks.join("") };
  } finally {
    write.mockRestore();
  }
}

/** `gradecast submit` of a sample score to `server`, in-process: exit code, stdout and stderr. */
async function submitWithCli(
  server: string,
  submissionId: number,
  more: string[] = [],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const score = sampleScoreData({ submissionId: BigInt(submissionId) });
  const errors: string[] = [];
  const writeErr = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    errors.push(String(chunk));
    return true;
  });
  try {
    const { exitCode, stdout } = await runCli([
      "submit",
      "--server",
      server,
      "--submission-id",
      String(submissionId),
      "--points-earned",
      String(score.pointsEarned),
      "--points-possible",
      String(score.pointsPossible),
      "--course-id",
      score.courseId,
      "--user-id",
      score.userId,
      "--module-id",
      score.moduleId,
      "--queue-key",
      score.queueKey,
      "--queue-name",
      score.queueName,
      ...more,
    ]);
    return { exitCode, stdout, stderr: errors.join("") };
  } finally {
    writeErr.mockRestore();
    // `submit` sets the exit code of the process it runs in; this one is the test worker.
    process.exitCode = 0;
  }
}

describe("gradecast submit against the wrong kind of server", () => {
  it("a plaintext submit to a TLS server says to add --tls-ca, and with it the score is taken", async () => {
    const server = await startTlsGradecast(false);
    const plaintext = await submitWithCli(server.address, 8401);
    expect(plaintext.exitCode).toBe(1);
    expect(plaintext.stdout).toBe("");
    const lines = plaintext.stderr.split("\n").filter((line) => line !== "");
    expect(lines).toEqual([
      expect.stringMatching(/^gradecast: UNAVAILABLE: /),
      `  hint: the server at ${server.address} may require TLS: add --tls-ca <file> (the CA that signed its certificate; env GRADECAST_CLIENT_TLS_CA), and with mutual TLS --tls-cert <file> --tls-key <file>`,
    ]);

    const withCa = await submitWithCli(server.address, 8401, ["--tls-ca", certificates.caPath]);
    expect({ exitCode: withCa.exitCode, stderr: withCa.stderr }).toEqual({
      exitCode: 0,
      stderr: "",
    });
    expect(JSON.parse(withCa.stdout)).toMatchObject({ submissionSequence: 1 });
  });

  it("a TLS submit to a plaintext server says to leave out the TLS flags", async () => {
    const plaintextServer = await startGradecast(nats.url);
    started.push(plaintextServer);
    const run = await submitWithCli(plaintextServer.address, 8402, [
      "--tls-ca",
      certificates.caPath,
    ]);
    expect(run.exitCode).toBe(1);
    expect(run.stderr.split("\n").filter((line) => line !== "")).toEqual([
      expect.stringMatching(/^gradecast: UNAVAILABLE: .*wrong version number/),
      `  hint: the server at ${plaintextServer.address} may not use TLS: leave out --tls-ca, --tls-cert and --tls-key (and their GRADECAST_CLIENT_TLS_* variables)`,
    ]);
  });
});

describe("gRPC TLS settings", () => {
  it("reads certificate, key and client CA files into PEM buffers", () => {
    expect(
      parseGrpcTls({
        tlsCert: certificates.serverCertPath,
        tlsKey: certificates.serverKeyPath,
        tlsClientCa: certificates.caPath,
      }),
    ).toEqual({
      certPem: certificates.serverCert,
      keyPem: certificates.serverKey,
      clientCaPem: certificates.ca,
    });
  });

  it("refuses a key that is not the certificate's, naming --tls-key", () => {
    const parsing = () =>
      parseGrpcTls({ tlsCert: certificates.serverCertPath, tlsKey: certificates.clientKeyPath });
    expect(parsing).toThrow(ConfigError);
    expect(parsing).toThrow("invalid --tls-key: is not the private key of --tls-cert");
  });
});
