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

/**
 * Creates the event stream and the dead-letter stream, or updates them to
 * these settings, and returns what the server now holds for the event stream.
 * Safe to call at every start and reconnect.
 */
export async function ensureStream(
  connection: NatsConnection,
  settings: StreamSettings,
): Promise<StreamConfig> {
  const jsm = await jetstreamManager(connection);
  const limits = limitsOf(settings);
  await ensureOne(jsm, settings.deadLetterName, {
    subjects: [deadLetterSubjectFilter(settings.subjectPrefix)],
    ...limits,
  });
  return ensureOne(jsm, settings.name, {
    subjects: [scoreSubjectFilter(settings.subjectPrefix)],
    ...limits,
  });
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
): Promise<StreamConfig> {
  try {
    const info = await jsm.streams.info(name);
    const updated = await jsm.streams.update(name, { ...info.config, ...wanted });
    return updated.config;
  } catch (error) {
    const isMissing =
      error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
    if (!isMissing) throw error;
    const created = await jsm.streams.add({ name, ...wanted });
    return created.config;
  }
}
