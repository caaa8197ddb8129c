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
  PublishError,
  type PublishObserver,
} from "./publisher.js";
export { ensureStream, type StreamSettings } from "./stream.js";
