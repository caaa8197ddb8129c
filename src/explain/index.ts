// `gradecast explain`: where one submission's scores are between the grader's call and the
// consumers. The store and JetStream are read here; the verdict rules are pure (verdict.ts).

export { consumerPosition, type PublishedEventRef } from "./consumer-position.js";
export type {
  ConsumerPosition,
  ConsumerSnapshot,
  ConsumerStanding,
  DeadLetterScan,
  DeadLetterSnapshot,
  JetStreamView,
  QueueStory,
  ScoreStory,
  StreamMessageCheck,
  StreamSnapshot,
  SubmissionStory,
  Verdict,
  VerdictKind,
} from "./explanation.js";
export {
  consumerSnapshot,
  type JetStreamNames,
  type JetStreamReadLimits,
  readJetStream,
} from "./jetstream-reading.js";
export { storyToJSON } from "./story-json.js";
export { REFUSED_CALLS_NOTE, storyLines } from "./story-text.js";
export { consumerTakesSubject, subjectMatchesFilter } from "./subject-filter.js";
export { tellSubmissionStory } from "./submission-story.js";
export { verdictOf } from "./verdict.js";
