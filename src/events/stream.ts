import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { nanos } from "@nats-io/nats-core";
import { scoreSubjectFilter } from "../contract/index.js";

/** The JetStream stream gradecast publishes to. */
export interface StreamSettings {
  name: string;
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
 * Creates the stream, or updates it to these settings, and returns what the
 * server now holds. Safe to call at every start and reconnect.
 */
export async function ensureStream(
  connection: NatsConnection,
  settings: StreamSettings,
): Promise<StreamConfig> {
  const jsm = await jetstreamManager(connection);
  const wanted: Partial<StreamConfig> = {
    subjects: [scoreSubjectFilter(settings.subjectPrefix)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(settings.duplicateWindowMs),
    max_age: nanos(settings.maxAgeMs),
    max_bytes: settings.maxBytes,
    num_replicas: settings.replicas,
  };
  try {
    const info = await jsm.streams.info(settings.name);
    const updated = await jsm.streams.update(settings.name, { ...info.config, ...wanted });
    return updated.config;
  } catch (error) {
    const isMissing =
      error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
    if (!isMissing) throw error;
    const created = await jsm.streams.add({ name: settings.name, ...wanted });
    return created.config;
  }
}
