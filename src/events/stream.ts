import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { nanos } from "@nats-io/nats-core";
import { deadLetterSubjectFilter, scoreSubjectFilter } from "../contract/index.js";

/** The JetStream streams of gradecast: its events, and the dead letters consumers give up on. */
export interface StreamSettings {
  name: string;
  /** Stream of `<prefix>.dlq.v1.*`, where the subscriber SDK puts events it cannot process. */
  deadLetterName: string;
  subjectPrefix: string;
  /** Window in which JetStream drops a re-published event id; must cover relay retries. */
  duplicateWindowMs: number;
  /** Oldest message kept; 0 keeps messages forever. */
  maxAgeMs: number;
  /** Most bytes kept; -1 for no limit. */
  maxBytes: number;
  /** Copies of each message in a cluster (1 on a single server). */
  replicas: number;
}

/** What one {@link ensureStream} call did to one stream. */
export interface StreamChange {
  stream: string;
  action: "created" | "updated";
  /** The settings that differed (all of them for a new stream). */
  fields: string[];
}

/** What {@link ensureStream} found and did. */
export interface EnsuredStreams {
  /** What the server now holds for the event stream. */
  config: StreamConfig;
  /** The streams it created or updated; empty when both already matched the settings. */
  changes: StreamChange[];
}

/**
 * Creates the event stream and the dead-letter stream, or updates them to
 * these settings, and reports what the server now holds for the event stream.
 * Safe to call at every start and reconnect.
 *
 * It reads first and updates only a stream whose settings really differ: in
 * a JetStream cluster a read is answered by the stream's leader, while an
 * update (or the account check nats.js makes by default, skipped here) needs
 * the meta leader, which may be in the middle of an election right after the
 * node gradecast was connected to died.
 */
export async function ensureStream(
  connection: NatsConnection,
  settings: StreamSettings,
): Promise<EnsuredStreams> {
  const jsm = await jetstreamManager(connection, { checkAPI: false });
  const limits = limitsOf(settings);
  const changes: StreamChange[] = [];
  await ensureOne(
    jsm,
    settings.deadLetterName,
    { subjects: [deadLetterSubjectFilter(settings.subjectPrefix)], ...limits },
    changes,
  );
  const config = await ensureOne(
    jsm,
    settings.name,
    { subjects: [scoreSubjectFilter(settings.subjectPrefix)], ...limits },
    changes,
  );
  return { config, changes };
}

function limitsOf(settings: StreamSettings): Partial<StreamConfig> {
  return {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(settings.duplicateWindowMs),
    max_age: nanos(settings.maxAgeMs),
    max_bytes: settings.maxBytes,
    num_replicas: settings.replicas,
  };
}

async function ensureOne(
  jsm: JetStreamManager,
  name: string,
  wanted: Partial<StreamConfig>,
  changes: StreamChange[],
): Promise<StreamConfig> {
  let current: StreamConfig;
  try {
    current = (await jsm.streams.info(name)).config;
  } catch (error) {
    const isMissing =
      error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
    if (!isMissing) throw error;
    const created = await jsm.streams.add({ name, ...wanted });
    changes.push({ stream: name, action: "created", fields: Object.keys(wanted) });
    return created.config;
  }
  const fields = differingFields(current, wanted);
  if (fields.length === 0) return current;
  const updated = await jsm.streams.update(name, { ...current, ...wanted });
  changes.push({ stream: name, action: "updated", fields });
  return updated.config;
}

/** The keys of `wanted` whose value `current` does not hold; subjects compare as a set. */
export function differingFields(
  current: Partial<StreamConfig>,
  wanted: Partial<StreamConfig>,
): string[] {
  return Object.entries(wanted)
    .filter(([key, value]) => !isSameSetting(current[key as keyof StreamConfig], value))
    .map(([key]) => key);
}

function isSameSetting(current: unknown, wanted: unknown): boolean {
  if (Array.isArray(current) && Array.isArray(wanted)) {
    const held = new Set(current);
    return held.size === new Set(wanted).size && wanted.every((item) => held.has(item));
  }
  return current === wanted;
}
