import { create, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  type Server,
  type ServerDuplexStream,
  type ServiceDefinition,
  status,
} from "@grpc/grpc-js";
import {
  type DescriptorIndex,
  indexDescriptorSets,
  readServedDescriptorSets,
} from "./descriptor-index.js";

/**
 * Adds gRPC server reflection (grpc.reflection.v1 and v1alpha, which share one wire format)
 * describing ScoreService, its messages, google.rpc's error details, Health and reflection
 * itself. It serves the descriptors `npm run generate` wrote to gen/descriptors/, byte for byte
 * as `buf build` compiled them, so a client builds a descriptor pool from reflection alone.
 * The files are read when called, not at import time.
 */
export async function addReflection(server: Pick<Server, "addService">): Promise<void> {
  const index = indexDescriptorSets(await readServedDescriptorSets());
  const requestSchema = reflectionSchema<ReflectionRequest>(index, "ServerReflectionRequest");
  const responseSchema = reflectionSchema<ReflectionResponse>(index, "ServerReflectionResponse");
  const serialize = (response: ReflectionResponse) =>
    Buffer.from(toBinary(responseSchema, response));
  const deserialize = (bytes: Buffer) => fromBinary(requestSchema, bytes);

  const serverReflectionInfo = (
    stream: ServerDuplexStream<ReflectionRequest, ReflectionResponse>,
  ) => {
    stream.on("data", (request: ReflectionRequest) => {
      const response = create(responseSchema, {
        validHost: request.host,
        originalRequest: request,
        messageResponse: answerReflection(index, request),
      });
      // A client that sends faster than it reads waits: its answers are not queued without bound.
      if (!stream.write(response)) {
        stream.pause();
        stream.once("drain", () => stream.resume());
      }
    });
    stream.on("end", () => stream.end());
  };

  for (const version of ["v1", "v1alpha"] as const) {
    const definition: ServiceDefinition = {
      ServerReflectionInfo: {
        path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
        requestStream: true,
        responseStream: true,
        requestSerialize: (request: ReflectionRequest) =>
          Buffer.from(toBinary(requestSchema, request)),
        requestDeserialize: deserialize,
        responseSerialize: serialize,
        responseDeserialize: (bytes: Buffer) => fromBinary(responseSchema, bytes),
      },
    };
    server.addService(definition, { ServerReflectionInfo: serverReflectionInfo });
  }
}

/** What reflection answers one request with (the `message_response` oneof). */
export type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** Longest name an error message repeats back: the request is the client's, not ours. */
const MAX_ECHOED_NAME_CHARS = 200;

/** Answers one ServerReflectionRequest from the indexed descriptors. */
export function answerReflection(
  index: DescriptorIndex,
  request: Pick<ReflectionRequest, "messageRequest">,
): ReflectionAnswer {
  const files = (fileName: string | undefined): ReflectionAnswer | undefined => {
    const found = fileName === undefined ? undefined : index.fileWithImports(fileName);
    return found && { case: "fileDescriptorResponse", value: { fileDescriptorProto: found } };
  };
  const notFound = (what: string, name: string): ReflectionAnswer => ({
    case: "errorResponse",
    value: {
      errorCode: status.NOT_FOUND,
      errorMessage: `${what} not found: ${name.slice(0, MAX_ECHOED_NAME_CHARS)}`,
    },
  });
  const { messageRequest } = request;
  switch (messageRequest.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: { service: index.serviceNames.map((name) => ({ name })) },
      };
    case "fileByFilename":
      return files(messageRequest.value) ?? notFound("file", messageRequest.value);
    case "fileContainingSymbol":
      return (
        files(index.fileNameOfSymbol(messageRequest.value)) ??
        notFound("symbol", messageRequest.value)
      );
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = messageRequest.value;
      return (
        files(index.fileNameOfExtension(containingType, extensionNumber)) ??
        notFound("extension", `${containingType} ${extensionNumber}`)
      );
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbersOf(messageRequest.value);
      if (!numbers) return notFound("message", messageRequest.value);
      return {
        case: "allExtensionNumbersResponse",
        value: { baseTypeName: messageRequest.value, extensionNumber: numbers },
      };
    }
    default:
      return {
        case: "errorResponse",
        value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "empty reflection request" },
      };
  }
}

// The reflection messages, in protobuf-es's shape for grpc/reflection/v1/reflection.proto
// (served from gen/descriptors/grpc-reflection.binpb, which also encodes and decodes them).
type ReflectionRequest = Message<"grpc.reflection.v1.ServerReflectionRequest"> & {
  host: string;
  messageRequest:
    | {
        case:
          | "fileByFilename"
          | "fileContainingSymbol"
          | "allExtensionNumbersOfType"
          | "listServices";
        value: string;
      }
    | {
        case: "fileContainingExtension";
        value: Message<"grpc.reflection.v1.ExtensionRequest"> & {
          containingType: string;
          extensionNumber: number;
        };
      }
    | { case: undefined; value?: undefined };
};

type ReflectionResponse = Message<"grpc.reflection.v1.ServerReflectionResponse"> & {
  validHost: string;
  originalRequest?: ReflectionRequest;
  messageResponse:
    | {
        case: "fileDescriptorResponse";
        value: Message<"grpc.reflection.v1.FileDescriptorResponse"> & {
          fileDescriptorProto: Uint8Array[];
        };
      }
    | {
        case: "allExtensionNumbersResponse";
        value: Message<"grpc.reflection.v1.ExtensionNumberResponse"> & {
          baseTypeName: string;
          extensionNumber: number[];
        };
      }
    | {
        case: "listServicesResponse";
        value: Message<"grpc.reflection.v1.ListServiceResponse"> & {
          service: (Message<"grpc.reflection.v1.ServiceResponse"> & { name: string })[];
        };
      }
    | {
        case: "errorResponse";
        value: Message<"grpc.reflection.v1.ErrorResponse"> & {
          errorCode: number;
          errorMessage: string;
        };
      }
    | { case: undefined; value?: undefined };
};

/**
 * A reflection message's schema, from the served descriptors. Typed the way generated code
 * types its schemas: the shape above is what protobuf-es makes of reflection.proto.
 */
function reflectionSchema<Shape extends Message>(
  index: DescriptorIndex,
  name: string,
): GenMessage<Shape> {
  const schema = index.registry.getMessage(`grpc.reflection.v1.${name}`);
  if (!schema) throw new Error(`gen/descriptors lacks grpc.reflection.v1.${name}`);
  return schema as GenMessage<Shape>;
}
