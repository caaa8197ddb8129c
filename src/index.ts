// The gradecast package: what graders and the LMS import. Its two halves are also published
// alone, without the service's dependencies: `@gradecast/client` (src/client-sdk.ts) and
// `@gradecast/subscriber` (src/subscriber-sdk.ts). Values and types are exported apart in
// each, as the generated contract types double as codecs.

export * from "./client-sdk.js";
export type { ScoreServiceServer } from "./contract/index.js";
export * from "./subscriber-sdk.js";
