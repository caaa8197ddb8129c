import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createScoreClient, PlaintextTokenError } from "../../src/client/index.js";

// Creating a client does not connect, so these need no server.
describe("a grader token without TLS", () => {
  it.each(["grader.example:50051", "10.0.0.7:50051", "[2001:db8::1]:50051"])(
    "is refused for %s, a host other machines see",
    (address) => {
      expect(() => createScoreClient(address, { token: "gradecast_x" })).toThrow(
        PlaintextTokenError,
      );
      expect(() => createScoreClient(address, { token: "gradecast_x" })).toThrow(
        /refusing to send a grader token without TLS to .*: use TLS/,
      );
    },
  );

  it.each(["127.0.0.1:50051", "localhost:50051", "[::1]:50051"])(
    "is sent to %s, on this machine",
    (address) => {
      expect(() => createScoreClient(address, { token: "gradecast_x" }).close()).not.toThrow();
    },
  );

  it("is sent when allowed explicitly, over TLS, or when there is no token", () => {
    const address = "grader.example:50051";
    const made = [
      () => createScoreClient(address, { token: "gradecast_x", allowPlaintextToken: true }),
      () =>
        createScoreClient(address, { token: "gradecast_x", credentials: credentials.createSsl() }),
      () => createScoreClient(address),
    ];
    for (const make of made) expect(() => make().close()).not.toThrow();
  });
});
