import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Server } from "@grpc/grpc-js";
import { load } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

const SCORE_SERVICE_PROTO = "gradecast/v1/score_service.proto";

/**
 * Adds gRPC server reflection (grpc.reflection.v1 and v1alpha) describing
 * ScoreService, its messages and the Health service, so tools such as grpcurl
 * work without the .proto files. The protos are read from the package's
 * `proto/` directory when called, not at import time.
 */
export async function addReflection(server: Pick<Server, "addService">): Promise<void> {
  // grpc-health-check ships health/v1/health.proto; its root is three levels up.
  const healthProtoRoot = dirname(dirname(dirname(healthProtoPath)));
  const definition = await load([SCORE_SERVICE_PROTO, "health/v1/health.proto"], {
    includeDirs: [contractProtoRoot(), healthProtoRoot],
  });
  new ReflectionService(definition).addToServer(server);
}

/** The `proto/` directory that ships with gradecast; found upward from here (src/ or dist/src/). */
function contractProtoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, SCORE_SERVICE_PROTO))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find proto/${SCORE_SERVICE_PROTO}`);
    dir = parent;
  }
}
