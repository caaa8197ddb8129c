// The domain rules of ExternalGraderScoreData, as written in score.proto's comments.
// Pure functions: they list violations, and the server edge turns a non-empty list
// into INVALID_ARGUMENT with a google.rpc.BadRequest detail.

import { Buffer } from "node:buffer";
import type { BadRequest_FieldViolation as FieldViolation } from "../../gen/ts/google/rpc/error_details.js";
import type { ExternalGraderScoreData } from "../../gen/ts/gradecast/v1/score.js";

/** The contract's size and shape limits; lengths of ids and score_msg are bytes of UTF-8. */
export const SCORE_LIMITS = Object.freeze({
  /** course_id, user_id, module_id and queue_key. */
  maxIdBytes: 255,
  maxScoreMsgBytes: 65_536,
  /** Bytes of UTF-8; any printable name XQueue could carry (`MITx-42.01x` included). */
  maxQueueNameBytes: 128,
});

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Every rule `data` breaks, in field-number order, one entry per broken rule, so a grader
 * can fix all of them in one round trip. An empty list means the score is valid.
 */
export function validateScoreData(
  data: ExternalGraderScoreData | undefined,
  fieldPrefix = "score_data",
): FieldViolation[] {
  if (data === undefined) return [{ field: fieldPrefix, description: "required" }];
  const path = (name: string): string => (fieldPrefix === "" ? name : `${fieldPrefix}.${name}`);
  // Runs on every SubmitScore: a valid score allocates no violation lists.
  const violations: FieldViolation[] = [];
  const add = (name: string, descriptions: readonly string[]): void => {
    for (const description of descriptions) violations.push({ field: path(name), description });
  };
  add("points_possible", pointsPossibleProblems(data.pointsPossible));
  add("points_earned", pointsEarnedProblems(data.pointsEarned, data.pointsPossible));
  add("course_id", idProblems(data.courseId));
  add("course_id", courseKeyProblems(data.courseId));
  add("score_msg", byteLengthProblems(data.scoreMsg, SCORE_LIMITS.maxScoreMsgBytes));
  violations.push(...validateSubmissionId(data.submissionId, path("submission_id")));
  add("user_id", idProblems(data.userId));
  add("module_id", idProblems(data.moduleId));
  add("queue_key", idProblems(data.queueKey));
  add("queue_name", queueNameProblems(data.queueName));
  return violations;
}

/**
 * The rules of a submission id on its own (GetScore has nothing else to check): > 0, and
 * within int64 so it encodes without wrapping.
 */
export function validateSubmissionId(id: bigint, field = "submission_id"): FieldViolation[] {
  if (id <= 0n) return [{ field, description: `must be > 0, got ${id}` }];
  if (id > INT64_MAX) {
    return [{ field, description: `must fit in int64 (at most ${INT64_MAX}), got ${id}` }];
  }
  return [];
}

// Each *Problems function returns the descriptions of the rules a value breaks
// (NO_PROBLEMS, shared and frozen, when it breaks none).

const NO_PROBLEMS: readonly string[] = Object.freeze([]);

function pointsPossibleProblems(value: number): readonly string[] {
  if (!isInt32(value)) return [notInt32(value)];
  return value > 0 ? NO_PROBLEMS : [`must be > 0, got ${value}`];
}

function pointsEarnedProblems(earned: number, possible: number): readonly string[] {
  if (!isInt32(earned)) return [notInt32(earned)];
  if (earned < 0) return [`must be >= 0, got ${earned}`];
  // Compared only against a valid points_possible: its own violation already says what is wrong.
  if (isInt32(possible) && possible > 0 && earned > possible) {
    return [`must be <= points_possible (${possible}), got ${earned}`];
  }
  return NO_PROBLEMS;
}

/** course_id, user_id, module_id and queue_key: required, bounded, no control characters. */
function idProblems(value: string): readonly string[] {
  // A whitespace-only id names nothing; its other rules would only repeat that.
  if (isBlank(value)) return [value === "" ? "required" : "required, got only whitespace"];
  const problems = [...byteLengthProblems(value, SCORE_LIMITS.maxIdBytes)];
  const control = firstControlCharacter(value);
  if (control !== undefined) {
    problems.push(
      `must not contain control characters (U+0000 to U+001F, U+007F), found ${codePoint(control)}`,
    );
  }
  // Protobuf decoders in JavaScript turn invalid UTF-8 into U+FFFD instead of failing, so an
  // id that arrived with bad bytes would otherwise be stored as a string nobody sent.
  if (value.includes("\uFFFD")) {
    problems.push(
      "must not contain U+FFFD (the replacement character: invalid UTF-8 on the wire, or a broken id)",
    );
  }
  return problems;
}

/**
 * Lenient on purpose: both `course-v1:Org+Course+Run` and the old `Org/Course/Run` keys are
 * accepted, and only whitespace is refused here. Control characters, whitespace or not, are
 * left to idProblems so one character is not reported twice.
 */
function courseKeyProblems(value: string): readonly string[] {
  if (isBlank(value)) return NO_PROBLEMS;
  const space = WHITESPACE_NOT_CONTROL.exec(value)?.[0];
  if (space === undefined) return NO_PROBLEMS;
  return [
    "must be an Open edX course key (course-v1:Org+Course+Run or Org/Course/Run) " +
      `without whitespace or control characters, found ${codePoint(space)}`,
  ];
}

function byteLengthProblems(value: string, maxBytes: number): readonly string[] {
  const bytes = Buffer.byteLength(value, "utf8");
  return bytes <= maxBytes
    ? NO_PROBLEMS
    : [`must be at most ${maxBytes} bytes of UTF-8, got ${bytes}`];
}

/**
 * Any name a course team could give its queue: printable UTF-8 up to 128 bytes. Refused: empty,
 * control characters (C0, DEL, C1), U+FFFD (invalid UTF-8 on the wire) and whitespace at either
 * end (a name nobody can see whole). The subject encodes the rest (see subjects.ts).
 */
function queueNameProblems(name: string): readonly string[] {
  if (isBlank(name)) return [name === "" ? "required" : "required, got only whitespace"];
  if (isPlainQueueName(name)) return NO_PROBLEMS;
  const problems = [...byteLengthProblems(name, SCORE_LIMITS.maxQueueNameBytes)];
  const control = [...name].find(isQueueNameControl);
  if (control !== undefined) {
    problems.push(
      `must not contain control characters (U+0000 to U+001F, U+007F to U+009F), found ${codePoint(control)}`,
    );
  }
  if (name.includes("\uFFFD")) {
    problems.push("must not contain U+FFFD (the replacement character: invalid UTF-8 on the wire)");
  }
  if (/^\s|\s$/u.test(name)) problems.push("must not begin or end with whitespace");
  return problems;
}

/** The common case, checked without allocating: 1-128 ASCII letters, digits, `_`, `-`, `.`. */
function isPlainQueueName(name: string): boolean {
  return PLAIN_QUEUE_NAME.test(name);
}

const PLAIN_QUEUE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

function isQueueNameControl(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? -1;
  return cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
}

/** Whether `name` is a queue name the contract accepts (for SDK options and filters). */
export function isValidQueueName(name: string): boolean {
  return queueNameProblems(name).length === 0;
}

function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

function notInt32(value: number): string {
  return `must be a whole number in the int32 range, got ${value}`;
}

function firstControlCharacter(value: string): string | undefined {
  // Control characters are single UTF-16 code units: no need to split into code points.
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit <= 0x1f || unit === 0x7f) return value[i];
  }
  return undefined;
}

/** Empty or only whitespace, as `trim()` sees it, without building the trimmed copy. */
function isBlank(value: string): boolean {
  return BLANK.test(value);
}

const BLANK = /^\s*$/;
/** Whitespace as `\s` has it, less the control characters among it (U+0009 to U+000D). */
// Stryker disable next-line Regex: its mutants (such as `\V`) are not valid with the u flag, so
// the mutated module would not load at all and no mutant of this file could be tested.
const WHITESPACE_NOT_CONTROL = /(?![\t\n\v\f\r])\s/u;

function codePoint(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}
