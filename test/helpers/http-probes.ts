/** One answer of gradecast's probe server. */
export interface ProbeAnswer {
  status: number;
  body: string;
}

/** GETs `path` from the metrics/probes HTTP server on `port`. */
export async function getProbe(port: number | undefined, path: string): Promise<ProbeAnswer> {
  if (port === undefined) throw new Error("the metrics server is off");
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, body: await response.text() };
}

/** The value of one sample line of a Prometheus text exposition, e.g. `name{a="b"}`; 0 if absent. */
export function sampleValue(exposition: string, series: string): number {
  for (const line of exposition.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}
