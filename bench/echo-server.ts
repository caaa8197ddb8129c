// Baseline for the benchmark: a grpc-js server that does no work. It takes the
// same request bytes as SubmitScore and answers a small constant response, so
// the ratio against it is the cost of gradecast's real work.
import { Server, ServerCredentials, type ServiceDefinition } from "@grpc/grpc-js";

const identity = (bytes: Buffer) => bytes;

export const ECHO_METHOD = "/bench.Echo/Echo";

const echoService: ServiceDefinition = {
  echo: {
    path: ECHO_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const RESPONSE = Buffer.alloc(64, 1);

const server = new Server();
server.addService(echoService, {
  echo: (_call: unknown, callback: (error: null, response: Buffer) => void) =>
    callback(null, RESPONSE),
});
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
