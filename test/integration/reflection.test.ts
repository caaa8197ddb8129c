import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DescriptorIndex,
  indexDescriptorSets,
  readServedDescriptorSets,
} from "../../src/server/descriptor-index.js";
import { startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { askReflection } from "../helpers/reflection-client.js";

// What a generic reflection client sees: the real descriptors of `buf build`. The Python suite
// (python/tests/test_reflection.py) builds a pool from them with grpcio-reflection and calls.

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let served: DescriptorIndex;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  served = indexDescriptorSets(await readServedDescriptorSets());
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
});

const namesOf = (files: Uint8Array[] | undefined) =>
  (files ?? []).map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);

describe.each(["v1", "v1alpha"] as const)("reflection %s", (version) => {
  it("lists ScoreService, Health and reflection itself", async () => {
    const answer = await askReflection(gradecast.address, version, { listServices: "*" });
    expect(answer.listServicesResponse?.service?.map((service) => service.name)).toEqual([
      "gradecast.v1.ScoreService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
    ]);
  });

  it("answers a file with its imports, byte for byte as buf build wrote them", async () => {
    const answer = await askReflection(gradecast.address, version, {
      fileByFilename: "gradecast/v1/score_service.proto",
    });
    const files = answer.fileDescriptorResponse?.fileDescriptorProto ?? [];

    expect(namesOf(files)).toEqual([
      "gradecast/v1/score_service.proto",
      "gradecast/v1/event.proto",
      "gradecast/v1/score.proto",
      "google/protobuf/timestamp.proto",
      "gradecast/v1/options.proto",
      "google/protobuf/descriptor.proto",
    ]);
    const expected = served.fileWithImports("gradecast/v1/score_service.proto") ?? [];
    expect(files.map((bytes) => Buffer.from(bytes).toString("base64"))).toEqual(
      expected.map((bytes) => Buffer.from(bytes).toString("base64")),
    );
    // Self-contained: every import is in the answer, so the files link on their own (a
    // FileDescriptorSet lists imports first, hence the reversed answer).
    const registry = createFileRegistry(
      create(FileDescriptorSetSchema, {
        file: [...files].reverse().map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes)),
      }),
    );
    expect(registry.getService("gradecast.v1.ScoreService")?.methods.map((m) => m.name)).toEqual([
      "SubmitScore",
      "GetScore",
    ]);
  });

  it("finds the file of a field and keeps its snake_case name", async () => {
    const answer = await askReflection(gradecast.address, version, {
      fileContainingSymbol: "gradecast.v1.ExternalGraderScoreData.points_earned",
    });
    const [score] = (answer.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );

    expect(score?.name).toBe("gradecast/v1/score.proto");
    const message = score?.messageType.find((m) => m.name === "ExternalGraderScoreData");
    expect(message?.field.map((field) => [field.name, field.jsonName])).toEqual([
      ["points_possible", "pointsPossible"],
      ["points_earned", "pointsEarned"],
      ["course_id", "courseId"],
      ["score_msg", "scoreMsg"],
      ["submission_id", "submissionId"],
      ["user_id", "userId"],
      ["module_id", "moduleId"],
      ["queue_key", "queueKey"],
      ["queue_name", "queueName"],
    ]);
  });

  it("finds gradecast's custom option by extension and lists its number", async () => {
    const extendee = "google.protobuf.MessageOptions";
    const byExtension = await askReflection(gradecast.address, version, {
      fileContainingExtension: { containingType: extendee, extensionNumber: 50701 },
    });
    const numbers = await askReflection(gradecast.address, version, {
      allExtensionNumbersOfType: extendee,
    });

    expect(namesOf(byExtension.fileDescriptorResponse?.fileDescriptorProto)[0]).toBe(
      "gradecast/v1/options.proto",
    );
    expect(numbers.allExtensionNumbersResponse).toEqual({
      baseTypeName: extendee,
      extensionNumber: [50701],
    });
  });

  it("answers an unknown symbol with NOT_FOUND and a bounded message", async () => {
    const symbol = `gradecast.v1.${"X".repeat(10_000)}`;
    const answer = await askReflection(gradecast.address, version, {
      fileContainingSymbol: symbol,
    });

    expect(answer.fileDescriptorResponse).toBeUndefined();
    expect(answer.errorResponse?.errorCode).toBe(status.NOT_FOUND);
    expect(answer.errorResponse?.errorMessage?.length).toBeLessThan(300);
  });
});
