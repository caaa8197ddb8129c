// Baseline for the benchmark (run as its own process by the bench): a grpc-js server that
// does no work. It takes the same request bytes as SubmitScore and answers a small constant
// response, so SubmitScore's throughput against it is the cost of gradecast's real work.
// Prints one JSON line {"port", "method"} once it listens; SIGTERM stops it.
import { Server, ServerCredentials, type ServiceDefinition } from "@grpc/grpc-js";

const ECHO_METHOD = "/bench.Echo/Echo";
const identity = (bytes: Buffer) => bytes;

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

/** About the size of a SubmitScore answer (event id, time, flags). */
const RESPONSE = Buffer.alloc(64, 1);

const server = new Server();
server.addService(echoService, {
  echo: (_call: unknown, callback: (error: null, response: Buffer) => void) =>
    callback(null, RESPONSE),
});
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${JSON.stringify({ port, method: ECHO_METHOD })}\n`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
