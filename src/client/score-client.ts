import {
  type ChannelCredentials,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  decodeFieldViolations,
  type ExternalGraderScoreData,
  type FieldViolation,
  type GetScoreResponse,
  ScoreServiceClient,
  STATUS_DETAILS_TRAILER,
  type SubmitScoreResponse,
} from "../contract/index.js";

import { isLoopbackAddress } from "./loopback.js";

/** A failed call: the gRPC status, and every field violation when the request was invalid. */
export class ScoreCallError extends Error {
  readonly code: number;
  readonly details: string;
  readonly violations: readonly FieldViolation[];

  constructor(error: ServiceError) {
    super(`${status[error.code] ?? error.code}: ${error.details}`, { cause: error });
    this.name = "ScoreCallError";
    this.code = error.code;
    this.details = error.details;
    this.violations = fieldViolationsOf(error.metadata);
  }
}

/** Options of {@link createScoreClient}. */
export interface ScoreClientOptions {
  /** Channel credentials; plaintext when omitted. */
  credentials?: ChannelCredentials;
  /** Deadline of each call. */
  deadlineMs?: number;
  /** The grader's token, sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /**
   * Send `token` without TLS to an address other than loopback. Off by default: anyone
   * on the path could read the token and report scores as this grader.
   */
  allowPlaintextToken?: boolean;
}

/** The client was asked to send a grader token where it could be read on the way. */
export class PlaintextTokenError extends Error {
  override readonly name = "PlaintextTokenError";
}

/** A promise-based client of ScoreService. */
export interface ScoreClient {
  submitScore(scoreData: ExternalGraderScoreData): Promise<SubmitScoreResponse>;
  getScore(submissionId: bigint): Promise<GetScoreResponse>;
  close(): void;
}

/** Connects to a gradecast server at `address` (`host:port`). */
export function createScoreClient(address: string, options: ScoreClientOptions = {}): ScoreClient {
  if (
    options.token !== undefined &&
    options.credentials === undefined &&
    options.allowPlaintextToken !== true &&
    !isLoopbackAddress(address)
  ) {
    throw new PlaintextTokenError(
      `refusing to send a grader token without TLS to ${address}: use TLS (channel credentials, or --tls-ca), or allow it explicitly (allowPlaintextToken, --plaintext-token)`,
    );
  }
  const client = new ScoreServiceClient(
    address,
    options.credentials ?? grpcCredentials.createInsecure(),
  );
  const deadlineMs = options.deadlineMs ?? 10_000;
  const callOptions = () => ({ deadline: Date.now() + deadlineMs });
  const { token } = options;
  const metadata = () => {
    const made = new Metadata();
    if (token !== undefined) made.set("authorization", `Bearer ${token}`);
    return made;
  };
  return {
    submitScore: (scoreData) =>
      new Promise((resolve, reject) => {
        client.submitScore({ scoreData }, metadata(), callOptions(), (error, response) =>
          error ? reject(new ScoreCallError(error)) : resolve(response),
        );
      }),
    getScore: (submissionId) =>
      new Promise((resolve, reject) => {
        client.getScore({ submissionId }, metadata(), callOptions(), (error, response) =>
          error ? reject(new ScoreCallError(error)) : resolve(response),
        );
      }),
    close: () => client.close(),
  };
}

/** The field violations carried in a `grpc-status-details-bin` trailer, if any. */
export function fieldViolationsOf(metadata: Metadata | undefined): FieldViolation[] {
  const raw = metadata?.get(STATUS_DETAILS_TRAILER)[0];
  if (!raw || typeof raw === "string") return [];
  return decodeFieldViolations(raw);
}
