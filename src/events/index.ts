export {
  authenticatorFor,
  type NatsAuth,
  NatsLink,
  type NatsLinkOptions,
} from "./nats-link.js";
export { OutboxMarks } from "./outbox-marks.js";
export { OutboxRelay, type OutboxRelayOptions } from "./outbox-relay.js";
export {
  EventPublisher,
  type EventPublisherOptions,
  PUBLISH_FAILURE_REASONS,
  PublishError,
  type PublishFailureReason,
  type PublishObserver,
  type PublishPath,
} from "./publisher.js";
export {
  type EnsuredStreams,
  ensureStream,
  type StreamChange,
  type StreamSettings,
} from "./stream.js";
export { StreamSetup, type StreamSetupOptions } from "./stream-setup.js";
