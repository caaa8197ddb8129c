import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

/** What the probe server answers from. */
export interface HttpProbesOptions {
  /** `host:port` to listen on; port 0 picks a free one. */
  listen: string;
  registry: Registry;
  /** Readiness: true while the health status is SERVING. */
  isReady: () => boolean;
  /** Lines `/readyz` prints after the status, e.g. a NATS limit an operator should raise. */
  readinessNotes?: () => readonly string[];
  logger: Logger;
}

/** The running probe server. */
export interface HttpProbes {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and closes idle keep-alive connections; resolves once all are closed. */
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text), `/healthz` (liveness: 200 while the
 * process answers) and `/readyz` (readiness: 200 only while health is
 * SERVING, else 503) over plain HTTP, apart from the gRPC port so scrapers
 * and kubelets need no gRPC.
 */
export async function startHttpProbes(options: HttpProbesOptions): Promise<HttpProbes> {
  const { host, port } = splitListenAddress(options.listen);
  const server = createServer((request, response) => {
    answer(request, response, options).catch((error: unknown) => {
      options.logger.error({ err: error, url: request.url }, "probe request failed");
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end("internal error\n");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(new Error(`cannot listen on ${options.listen}: ${error.message}`, { cause: error })),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = address !== null && typeof address === "object" ? address.port : port;
  return {
    port: boundPort,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

async function answer(
  request: IncomingMessage,
  response: ServerResponse,
  options: HttpProbesOptions,
): Promise<void> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
    response.end("method not allowed\n");
    return;
  }
  const path = new URL(request.url ?? "/", "http://probe").pathname;
  switch (path) {
    case "/metrics": {
      const body = await options.registry.metrics();
      response.writeHead(200, { "content-type": options.registry.contentType });
      response.end(body);
      return;
    }
    case "/healthz":
      response.writeHead(200, { "content-type": "text/plain" });
      response.end("ok\n");
      return;
    case "/readyz": {
      const isReady = options.isReady();
      response.writeHead(isReady ? 200 : 503, { "content-type": "text/plain" });
      const notes = options.readinessNotes?.() ?? [];
      const lines = [
        isReady ? "SERVING" : "NOT_SERVING",
        ...notes.map((note) => `warning: ${note}`),
      ];
      response.end(`${lines.join("\n")}\n`);
      return;
    }
    default:
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found: try /metrics, /healthz or /readyz\n");
  }
}

/** `host:port` or `[v6]:port` into its parts (validated at the CLI edge). */
function splitListenAddress(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(listen.slice(colon + 1)) };
}
