import { GradecastError } from "../contract/messages.js";
import { type ScoreEvent, type ScoreEventJSON, scoreEventToJSON } from "./score-event.js";
import type { SubscriptionStatus } from "./subscription-status.js";

/** An error as a status's JSON form holds it: what a log line needs, nothing that can throw. */
export interface ErrorJSON {
  readonly name: string;
  readonly message: string;
  /** The stable code of a `GradecastError`. */
  readonly code?: string;
}

/** One status variant's JSON form: its errors as {@link ErrorJSON}, its event as {@link ScoreEventJSON}. */
type JSONOfStatus<S> = {
  readonly [K in keyof S]: S[K] extends Error
    ? ErrorJSON
    : S[K] extends Error | undefined
      ? ErrorJSON | undefined
      : S[K] extends ScoreEvent
        ? ScoreEventJSON
        : S[K];
};

/**
 * The JSON form of a {@link SubscriptionStatus}: the same `type` and fields, with each error as
 * {@link ErrorJSON} (`JSON.stringify` would write an `Error` as `{}`) and an event as its
 * {@link ScoreEventJSON} (its bigint submission id as a decimal string).
 */
export type SubscriptionStatusJSON = SubscriptionStatus extends infer S
  ? S extends unknown
    ? JSONOfStatus<S>
    : never
  : never;

/** `status` as a value `JSON.stringify` writes in full and never throws on. */
export function subscriptionStatusToJSON(status: SubscriptionStatus): SubscriptionStatusJSON {
  const json: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(status)) {
    if (value instanceof Error) json[key] = errorToJSON(value);
    else if (key === "event" && "event" in status) json[key] = scoreEventToJSON(status.event);
    else json[key] = value;
  }
  return json as SubscriptionStatusJSON;
}

function errorToJSON(error: Error): ErrorJSON {
  return {
    name: error.name,
    message: error.message,
    ...(error instanceof GradecastError ? { code: error.code } : {}),
  };
}
