import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { loadSync, type ServiceDefinition } from "@grpc/proto-loader";

/** One ServerReflectionInfo answer, as proto-loader decodes it (camelCase fields). */
export interface ReflectionAnswer {
  listServicesResponse?: { service?: { name?: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto?: Uint8Array[] };
  allExtensionNumbersResponse?: { baseTypeName?: string; extensionNumber?: number[] };
  errorResponse?: { errorCode?: number; errorMessage?: string };
}

/** A request of the reflection stream (one of ServerReflectionRequest's `message_request`). */
export type ReflectionRequest =
  | { listServices: string }
  | { fileByFilename: string }
  | { fileContainingSymbol: string }
  | { fileContainingExtension: { containingType: string; extensionNumber: number } }
  | { allExtensionNumbersOfType: string };

/**
 * Sends one request on a `grpc.reflection.<version>.ServerReflection/ServerReflectionInfo` stream,
 * using the reflection proto that @grpc/reflection ships, and resolves with its answer.
 */
export async function askReflection(
  address: string,
  version: "v1" | "v1alpha",
  request: ReflectionRequest,
): Promise<ReflectionAnswer> {
  const method = reflectionMethod(version);
  const client = new Client(address, credentials.createInsecure());
  try {
    return await new Promise<ReflectionAnswer>((resolve, reject) => {
      const stream = client.makeBidiStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
      );
      stream.on("data", (answer: ReflectionAnswer) => {
        resolve(answer);
        stream.end();
      });
      stream.on("error", (error: ServiceError) => reject(error));
      stream.write(request);
    });
  } finally {
    client.close();
  }
}

function reflectionMethod(version: "v1" | "v1alpha") {
  const packageEntry = fileURLToPath(import.meta.resolve("@grpc/reflection"));
  // build/src/index.js → build/proto/
  const protoRoot = join(dirname(dirname(packageEntry)), "proto");
  const definition = loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [protoRoot],
  });
  const service = definition[`grpc.reflection.${version}.ServerReflection`] as
    | ServiceDefinition
    | undefined;
  const method = service?.ServerReflectionInfo;
  if (!method) throw new Error(`no ServerReflectionInfo in ${protoRoot}`);
  return method;
}
