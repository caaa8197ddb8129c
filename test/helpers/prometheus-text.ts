/** One sample line of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A metric family as its `# HELP` and `# TYPE` lines declare it. */
export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help: string;
}

/** A parsed exposition: its families by name, and every sample in order. */
export interface Exposition {
  families: ReadonlyMap<string, MetricFamily>;
  samples: readonly Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL_NAME = "[a-zA-Z_][a-zA-Z0-9_]*";
const FAMILY_TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
/** Suffixes a family's samples may add to its name, by family type. */
const SAMPLE_SUFFIXES: Record<MetricFamily["type"], readonly string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

/**
 * Parses the Prometheus text format (version 0.0.4) strictly: every line must be a comment,
 * `# HELP`, `# TYPE` or a well-formed sample of a declared family, and no series may repeat.
 * Throws naming the line otherwise, so a malformed `/metrics` fails the test that reads it.
 */
export function parsePrometheusText(text: string): Exposition {
  const families = new Map<string, MetricFamily>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line === "") return;
    const meta = new RegExp(`^# (HELP|TYPE) (${NAME}) ?(.*)$`).exec(line);
    if (meta) {
      const [, keyword, name = "", rest = ""] = meta;
      const family = families.get(name) ?? { name, type: "untyped", help: "" };
      if (keyword === "TYPE") {
        if (!FAMILY_TYPES.has(rest)) throw new Error(`unknown metric type at ${where}`);
        family.type = rest as MetricFamily["type"];
      } else {
        family.help = unescapeText(rest, where, false);
      }
      families.set(name, family);
      return;
    }
    if (line.startsWith("#")) return;
    const sample = parseSample(line, where);
    if (!familyOf(families, sample.name))
      throw new Error(`sample of an undeclared metric at ${where}`);
    const key = seriesKey(sample.name, sample.labels);
    if (seen.has(key)) throw new Error(`repeated series at ${where}`);
    seen.add(key);
    samples.push(sample);
  });
  return { families, samples };
}

/** The value of the one sample with exactly these name and labels; undefined when absent. */
export function sampleOf(
  exposition: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const key = seriesKey(name, labels);
  return exposition.samples.find((sample) => seriesKey(sample.name, sample.labels) === key)?.value;
}

/** Every sample of `name` whose labels include `labels` (others may differ). */
export function samplesMatching(
  exposition: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Sample[] {
  return exposition.samples.filter(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
  );
}

function parseSample(line: string, where: string): Sample {
  const nameMatch = new RegExp(`^${NAME}`).exec(line);
  if (!nameMatch) throw new Error(`no metric name at ${where}`);
  const name = nameMatch[0];
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    const labelPattern = new RegExp(`^(${LABEL_NAME})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"(,?)`);
    while (!rest.startsWith("}")) {
      const label = labelPattern.exec(rest);
      if (!label) throw new Error(`malformed label at ${where}`);
      const [whole, labelName = "", rawValue = "", comma] = label;
      if (labelName in labels) throw new Error(`label ${labelName} repeated at ${where}`);
      labels[labelName] = unescapeText(rawValue, where, true);
      rest = rest.slice(whole.length);
      if (comma === "" && !rest.startsWith("}")) throw new Error(`missing comma at ${where}`);
    }
    rest = rest.slice(1);
  }
  const valueMatch = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  if (!valueMatch) throw new Error(`malformed value at ${where}`);
  const value = parseValue(valueMatch[1] ?? "", where);
  return { name, labels, value };
}

/** A value as Go's ParseFloat reads it (what Prometheus uses): NaN and Inf in any case too. */
function parseValue(text: string, where: string): number {
  const special = /^([-+]?)(inf|infinity|nan)$/i.exec(text);
  if (special) {
    if (special[2]?.toLowerCase() === "nan") return Number.NaN;
    return special[1] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new Error(`malformed value ${text} at ${where}`);
  }
  return Number(text);
}

/** Label values escape `\`, `"` and newline; HELP text escapes `\` and newline only. */
function unescapeText(text: string, where: string, isLabelValue: boolean): string {
  return text.replace(/\\(.)/g, (whole, escaped: string) => {
    if (escaped === "\\") return "\\";
    if (escaped === "n") return "\n";
    if (escaped === '"' && isLabelValue) return '"';
    if (!isLabelValue) return whole;
    throw new Error(`bad escape ${whole} at ${where}`);
  });
}

function familyOf(
  families: ReadonlyMap<string, MetricFamily>,
  sampleName: string,
): MetricFamily | undefined {
  for (const family of families.values()) {
    for (const suffix of SAMPLE_SUFFIXES[family.type]) {
      if (sampleName === family.name + suffix) return family;
    }
  }
  return undefined;
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([name, pairs]);
}
