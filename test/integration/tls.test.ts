import { credentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/cli/config-values.js";
import { parseGrpcTls } from "../../src/cli/credential-values.js";
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
async function startTlsGradecast(isMutual: boolean): Promise<TestGradecast> {
  const gradecast = await startGradecast(nats.url, {
    tls: {
      certPem: certificates.serverCert,
      keyPem: certificates.serverKey,
      ...(isMutual ? { clientCaPem: certificates.ca } : {}),
    },
    stream: {
      name: isMutual ? "GRADECAST_MTLS" : "GRADECAST_TLS",
      deadLetterName: isMutual ? "GRADECAST_MTLS_DLQ" : "GRADECAST_TLS_DLQ",
      subjectPrefix: isMutual ? "gradecast-mtls" : "gradecast-tls",
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
    expect(await streamReadyWithin(gradecast, 10_000)).toBe("ready");

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
