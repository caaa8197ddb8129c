import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type DescriptorIndex,
  indexDescriptorSets,
  readServedDescriptorSets,
} from "../../src/server/descriptor-index.js";
import { answerReflection } from "../../src/server/reflection.js";

let sets: Uint8Array[];
let index: DescriptorIndex;

beforeAll(async () => {
  sets = await readServedDescriptorSets();
  index = indexDescriptorSets(sets);
});

describe("the descriptor index of gen/descriptors", () => {
  it.each([
    ["gradecast.v1.ScoreService", "gradecast/v1/score_service.proto"],
    ["gradecast.v1.ScoreService.SubmitScore", "gradecast/v1/score_service.proto"],
    ["gradecast.v1.SubmitScoreRequest.score_data", "gradecast/v1/score_service.proto"],
    ["gradecast.v1.EventMetadata", "gradecast/v1/event.proto"],
    ["gradecast.v1.event_type", "gradecast/v1/options.proto"],
    ["google.rpc.BadRequest.FieldViolation", "google/rpc/error_details.proto"],
    ["google.rpc.Status", "google/rpc/status.proto"],
    ["google.protobuf.Timestamp", "google/protobuf/timestamp.proto"],
    ["google.protobuf.FieldDescriptorProto.Type", "google/protobuf/descriptor.proto"],
    // Enum values sit beside their enum, not inside it.
    ["google.protobuf.FieldDescriptorProto.TYPE_INT64", "google/protobuf/descriptor.proto"],
    ["grpc.health.v1.Health.Watch", "health/v1/health.proto"],
    ["grpc.health.v1.HealthCheckResponse.SERVING", "health/v1/health.proto"],
    ["grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"],
  ])("finds %s in %s", (symbol, fileName) => {
    expect(index.fileNameOfSymbol(symbol)).toBe(fileName);
  });

  it.each(["", ".gradecast.v1.ScoreService", "gradecast.v1", "gradecast.v1.Nope"])(
    "finds no file for %j",
    (symbol) => {
      expect(index.fileNameOfSymbol(symbol)).toBeUndefined();
    },
  );

  it("gives a file and each of its imports once, the asked-for file first", () => {
    const names = (fileName: string) =>
      index
        .fileWithImports(fileName)
        ?.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
    expect(names("google/rpc/status.proto")).toEqual([
      "google/rpc/status.proto",
      "google/protobuf/any.proto",
    ]);
    // event.proto and score_service.proto both import score.proto and timestamp.proto.
    expect(names("gradecast/v1/score_service.proto")).toEqual([
      "gradecast/v1/score_service.proto",
      "gradecast/v1/event.proto",
      "gradecast/v1/score.proto",
      "google/protobuf/timestamp.proto",
      "gradecast/v1/options.proto",
      "google/protobuf/descriptor.proto",
    ]);
    expect(index.fileWithImports("no/such.proto")).toBeUndefined();
  });

  it("knows the extension numbers of a message, and none of an unknown one", () => {
    expect(index.extensionNumbersOf("google.protobuf.MessageOptions")).toEqual([50701]);
    expect(index.extensionNumbersOf("gradecast.v1.ExternalGraderScoreData")).toEqual([]);
    expect(index.extensionNumbersOf("gradecast.v1.Nope")).toBeUndefined();
  });

  it("refuses a set whose file imports a file no set holds", () => {
    const scoreServiceAlone = index.registry.getFile("gradecast/v1/score_service.proto")?.proto;
    const lonely = toBinary(
      FileDescriptorSetSchema,
      create(FileDescriptorSetSchema, { file: scoreServiceAlone ? [scoreServiceAlone] : [] }),
    );
    expect(() => indexDescriptorSets([lonely])).toThrow(/gradecast\/v1\/event\.proto/);
  });

  it("refuses two different files under one name", () => {
    const health = index.registry.getFile("health/v1/health.proto")?.proto;
    if (!health) throw new Error("no health.proto");
    const renamed = create(FileDescriptorSetSchema, {
      file: [{ ...health, package: "elsewhere.v1" }],
    });
    expect(() =>
      indexDescriptorSets([...sets, toBinary(FileDescriptorSetSchema, renamed)]),
    ).toThrow(/two different descriptors of health\/v1\/health.proto/);
  });
});

describe("answerReflection", () => {
  it("answers a request without a question with INVALID_ARGUMENT", () => {
    expect(answerReflection(index, { messageRequest: { case: undefined } })).toEqual({
      case: "errorResponse",
      value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "empty reflection request" },
    });
  });
});
