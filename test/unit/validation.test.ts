import { describe, expect, it } from "vitest";
import {
  type ExternalGraderScoreData,
  type FieldViolation,
  isValidQueueName,
  SCORE_LIMITS,
  validateScoreData,
  validateSubmissionId,
} from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";

const INT64_MAX = 2n ** 63n - 1n;

/** Each violation expected in order: its field path and a pattern its description must match. */
type Expected = ReadonlyArray<readonly [field: string, description: RegExp]>;

function expectViolations(actual: FieldViolation[], expected: Expected): void {
  expect(actual).toEqual(
    expected.map(([field, description]) => ({
      field,
      description: expect.stringMatching(description),
    })),
  );
}

interface BadCase {
  name: string;
  overrides: Partial<ExternalGraderScoreData>;
  violations: Expected;
}

const REQUIRED = /^required$/;
const WHITESPACE_ONLY = /^required, got only whitespace$/;
const CONTROL = /^must not contain control characters \(U\+0000 to U\+001F, U\+007F\), found U\+/;
const bytes = (n: number): RegExp => new RegExp(`^must be at most ${n} bytes of UTF-8, got`);
const gotBytes = (max: number, got: number): RegExp =>
  new RegExp(`^must be at most ${max} bytes of UTF-8, got ${got}$`);

const REPLACEMENT = /^must not contain U\+FFFD/;

const badCases: BadCase[] = [
  // invalid UTF-8 decodes to U+FFFD in JavaScript
  {
    name: "user_id with a replacement character (invalid UTF-8 on the wire)",
    overrides: { userId: "abc\uFFFDdef" },
    violations: [["score_data.user_id", REPLACEMENT]],
  },
  {
    name: "queue_key with a replacement character",
    overrides: { queueKey: "\uFFFD" },
    violations: [["score_data.queue_key", REPLACEMENT]],
  },
  // points_possible
  {
    name: "points_possible 0",
    overrides: { pointsPossible: 0, pointsEarned: 0 },
    violations: [["score_data.points_possible", /^must be > 0, got 0$/]],
  },
  {
    name: "points_possible 0 (points_earned 5 not compared with it)",
    overrides: { pointsPossible: 0, pointsEarned: 5 },
    violations: [["score_data.points_possible", /^must be > 0, got 0$/]],
  },
  {
    name: "points_possible at the int32 minimum (an int32, so only not > 0)",
    overrides: { pointsPossible: -(2 ** 31) },
    violations: [["score_data.points_possible", /^must be > 0, got -2147483648$/]],
  },
  {
    name: "points_possible just below the int32 minimum",
    overrides: { pointsPossible: -(2 ** 31) - 1 },
    violations: [
      [
        "score_data.points_possible",
        /^must be a whole number in the int32 range, got -2147483649$/,
      ],
    ],
  },
  {
    name: "negative points_possible (points_earned not compared with it)",
    overrides: { pointsPossible: -5 },
    violations: [["score_data.points_possible", /^must be > 0, got -5$/]],
  },
  {
    name: "fractional points_possible",
    overrides: { pointsPossible: 10.5 },
    violations: [["score_data.points_possible", /^must be a whole number.*got 10\.5$/]],
  },
  {
    name: "NaN points_possible",
    overrides: { pointsPossible: Number.NaN },
    violations: [["score_data.points_possible", /^must be a whole number.*got NaN$/]],
  },
  // points_earned
  {
    name: "negative points_earned",
    overrides: { pointsEarned: -1 },
    violations: [["score_data.points_earned", /^must be >= 0, got -1$/]],
  },
  {
    name: "points_earned above points_possible",
    overrides: { pointsEarned: 12 },
    violations: [["score_data.points_earned", /^must be <= points_possible \(10\), got 12$/]],
  },
  {
    name: "fractional points_earned",
    overrides: { pointsEarned: 6.5 },
    violations: [["score_data.points_earned", /^must be a whole number.*got 6\.5$/]],
  },
  {
    name: "points_earned beyond int32",
    overrides: { pointsPossible: 2 ** 31 - 1, pointsEarned: 2 ** 31 },
    violations: [["score_data.points_earned", /int32 range, got 2147483648$/]],
  },
  // course_id
  {
    name: "empty course_id",
    overrides: { courseId: "" },
    violations: [["score_data.course_id", REQUIRED]],
  },
  {
    name: "whitespace-only course_id",
    overrides: { courseId: "   " },
    violations: [["score_data.course_id", WHITESPACE_ONLY]],
  },
  {
    name: "course_id of 256 ASCII bytes",
    overrides: { courseId: `course-v1:${"x".repeat(246)}` },
    violations: [["score_data.course_id", gotBytes(255, 256)]],
  },
  {
    name: "course_id of 128 characters but 256 bytes (é is 2 bytes)",
    overrides: { courseId: "é".repeat(128) },
    violations: [["score_data.course_id", gotBytes(255, 256)]],
  },
  {
    name: "course_id with a space",
    overrides: { courseId: "course-v1:edX+Demo X+2024" },
    violations: [["score_data.course_id", /^must be an Open edX course key.*found U\+0020$/]],
  },
  {
    name: "course_id with a no-break space",
    overrides: { courseId: "edX/DemoX\u00a0/2024" },
    violations: [["score_data.course_id", /^must be an Open edX course key.*found U\+00A0$/]],
  },
  {
    name: "course_id with a newline",
    overrides: { courseId: "course-v1:edX+DemoX+2024\n" },
    violations: [["score_data.course_id", /found U\+000A$/]],
  },
  {
    name: "course_id both too long and with a control character",
    overrides: { courseId: `course-v1:\u0001${"x".repeat(299)}` },
    violations: [
      ["score_data.course_id", gotBytes(255, 310)],
      ["score_data.course_id", CONTROL],
    ],
  },
  // score_msg
  {
    name: "score_msg of 65537 bytes",
    overrides: { scoreMsg: "x".repeat(65_537) },
    violations: [["score_data.score_msg", gotBytes(65_536, 65_537)]],
  },
  {
    name: "score_msg of 21846 characters but 65538 bytes (✓ is 3 bytes)",
    overrides: { scoreMsg: "✓".repeat(21_846) },
    violations: [["score_data.score_msg", gotBytes(65_536, 65_538)]],
  },
  // submission_id
  {
    name: "submission_id 0",
    overrides: { submissionId: 0n },
    violations: [["score_data.submission_id", /^must be > 0, got 0$/]],
  },
  {
    name: "negative submission_id",
    overrides: { submissionId: -4821n },
    violations: [["score_data.submission_id", /^must be > 0, got -4821$/]],
  },
  {
    name: "submission_id beyond int64",
    overrides: { submissionId: INT64_MAX + 1n },
    violations: [["score_data.submission_id", /^must fit in int64.*got 9223372036854775808$/]],
  },
  // user_id
  {
    name: "empty user_id",
    overrides: { userId: "" },
    violations: [["score_data.user_id", REQUIRED]],
  },
  {
    name: "user_id of tabs and newlines only",
    overrides: { userId: "\t\n" },
    violations: [["score_data.user_id", WHITESPACE_ONLY]],
  },
  {
    name: "user_id of 256 bytes",
    overrides: { userId: "a".repeat(256) },
    violations: [["score_data.user_id", bytes(255)]],
  },
  {
    name: "user_id with a NUL",
    overrides: { userId: "106ecd87\u00008f41" },
    violations: [["score_data.user_id", /found U\+0000$/]],
  },
  // module_id
  {
    name: "empty module_id",
    overrides: { moduleId: "" },
    violations: [["score_data.module_id", REQUIRED]],
  },
  {
    name: "module_id of 256 bytes",
    overrides: { moduleId: `block-v1:${"b".repeat(247)}` },
    violations: [["score_data.module_id", gotBytes(255, 256)]],
  },
  {
    name: "module_id with DEL",
    overrides: { moduleId: "block-v1:edX+DemoX\u007f" },
    violations: [["score_data.module_id", /found U\+007F$/]],
  },
  // queue_key
  {
    name: "empty queue_key",
    overrides: { queueKey: "" },
    violations: [["score_data.queue_key", REQUIRED]],
  },
  {
    name: "queue_key of 300 bytes",
    overrides: { queueKey: "k".repeat(300) },
    violations: [["score_data.queue_key", gotBytes(255, 300)]],
  },
  {
    name: "queue_key with an escape character",
    overrides: { queueKey: "ffcd\u001b[31m" },
    violations: [["score_data.queue_key", /found U\+001B$/]],
  },
  {
    name: "queue_key with U+001F, the last C0 control character",
    overrides: { queueKey: "key\u001f1" },
    violations: [["score_data.queue_key", /found U\+001F$/]],
  },
  // queue_name
  {
    name: "empty queue_name",
    overrides: { queueName: "" },
    violations: [["score_data.queue_name", REQUIRED]],
  },
  {
    name: "whitespace-only queue_name",
    overrides: { queueName: "  " },
    violations: [["score_data.queue_name", /^required, got only whitespace$/]],
  },
  {
    name: "queue_name with a leading space",
    overrides: { queueName: " MITx-42.01x" },
    violations: [["score_data.queue_name", /^must not begin or end with whitespace$/]],
  },
  {
    name: "queue_name with a trailing tab",
    overrides: { queueName: "MITx-42.01x\t" },
    violations: [
      ["score_data.queue_name", /found U\+0009$/],
      ["score_data.queue_name", /^must not begin or end with whitespace$/],
    ],
  },
  {
    name: "queue_name with a control character",
    overrides: { queueName: "python\u0000" },
    violations: [
      ["score_data.queue_name", /^must not contain control characters .*found U\+0000$/],
    ],
  },
  {
    name: "queue_name with a C1 control character",
    overrides: { queueName: "python\u0085grader" },
    violations: [["score_data.queue_name", /found U\+0085$/]],
  },
  // The bounds of the refused control ranges: C0 up to U+001F, DEL, and C1 up to U+009F.
  ...[0x1f, 0x7f, 0x9f].map((cp): BadCase => {
    const hex = cp.toString(16).toUpperCase().padStart(4, "0");
    return {
      name: `queue_name with U+${hex}`,
      overrides: { queueName: `python${String.fromCodePoint(cp)}grader` },
      violations: [
        [
          "score_data.queue_name",
          new RegExp(
            `^must not contain control characters \\(U\\+0000 to U\\+001F, U\\+007F to U\\+009F\\), found U\\+${hex}$`,
          ),
        ],
      ],
    };
  }),
  {
    name: "queue_name with a replacement character",
    overrides: { queueName: "python\uFFFD" },
    violations: [["score_data.queue_name", /U\+FFFD/]],
  },
  {
    name: "queue_name of 129 bytes",
    overrides: { queueName: "q".repeat(129) },
    violations: [["score_data.queue_name", gotBytes(128, 129)]],
  },
  {
    name: "queue_name of 130 bytes in 65 'é'",
    overrides: { queueName: "é".repeat(65) },
    violations: [["score_data.queue_name", gotBytes(128, 130)]],
  },
];

describe("validateScoreData", () => {
  it("accepts the sample score", () => {
    expect(validateScoreData(sampleScoreData())).toEqual([]);
  });

  it.each(badCases)("rejects $name", ({ overrides, violations }) => {
    const actual = validateScoreData(sampleScoreData(overrides));
    expectViolations(actual, violations);
    for (const violation of actual) expect(violation.description).toMatch(/^[a-z]/);
  });

  it("reports every bad field at once, in field-number order", () => {
    const actual = validateScoreData(
      sampleScoreData({ queueName: " python.grader", userId: "", pointsEarned: 11 }),
    );
    expectViolations(actual, [
      ["score_data.points_earned", /^must be <= points_possible \(10\), got 11$/],
      ["score_data.user_id", REQUIRED],
      ["score_data.queue_name", /^must not begin or end with whitespace$/],
    ]);
  });

  it("reports a missing score_data as one violation", () => {
    expect(validateScoreData(undefined)).toEqual([
      { field: "score_data", description: "required" },
    ]);
  });

  it("prefixes field paths with the given prefix, or none", () => {
    const bad = sampleScoreData({ queueKey: "" });
    expect(validateScoreData(bad, "request.score_data")).toEqual([
      { field: "request.score_data.queue_key", description: "required" },
    ]);
    expect(validateScoreData(bad, "")).toEqual([{ field: "queue_key", description: "required" }]);
    expect(validateScoreData(undefined, "data")).toEqual([
      { field: "data", description: "required" },
    ]);
  });

  it.each<[string, Partial<ExternalGraderScoreData>]>([
    ["points_earned equal to points_possible", { pointsEarned: 10 }],
    ["points_earned 0", { pointsEarned: 0 }],
    ["points_possible at the int32 maximum", { pointsPossible: 2 ** 31 - 1 }],
    ["an old-style Org/Course/Run course_id", { courseId: "edX/DemoX/Demo_Course" }],
    ["a course_id of 255 ASCII bytes", { courseId: `course-v1:${"x".repeat(245)}` }],
    ["a course_id of 255 bytes with 2-byte characters", { courseId: `${"é".repeat(127)}x` }],
    ["a user_id of 255 bytes", { userId: "u".repeat(255) }],
    ["a module_id of 255 bytes", { moduleId: "m".repeat(255) }],
    ["a queue_key of 255 bytes with 3-byte characters", { queueKey: "✓".repeat(85) }],
    ["an empty score_msg", { scoreMsg: "" }],
    ["a score_msg of 65536 bytes", { scoreMsg: "x".repeat(65_536) }],
    ["a score_msg of 65536 bytes with 3-byte characters", { scoreMsg: `${"✓".repeat(21_845)}x` }],
    ["a score_msg with newlines and tabs", { scoreMsg: '{\n\t"msg": "<p>ok</p>"\n}' }],
    ["submission_id 1", { submissionId: 1n }],
    ["submission_id at the int64 maximum", { submissionId: INT64_MAX }],
    ["queue_name python-grader_2", { queueName: "python-grader_2" }],
    ["a one-character queue_name", { queueName: "q" }],
    ["a queue_name of 128 characters", { queueName: "Q".repeat(128) }],
    ["a queue_name with dots, as course teams write them", { queueName: "MITx-42.01x" }],
    ["a queue_name with a space inside", { queueName: "python grader" }],
    ["a queue_name with '*', '>' and '%'", { queueName: "a*b>c%d" }],
    ["a non-ASCII queue_name", { queueName: "北大-计算机.101" }],
    ["a queue_name of 128 bytes in 64 'é'", { queueName: "é".repeat(64) }],
  ])("accepts %s", (_name, overrides) => {
    expect(validateScoreData(sampleScoreData(overrides))).toEqual([]);
  });
});

describe("isValidQueueName", () => {
  it.each([
    "python-grader",
    "q",
    "MITx-42.01x",
    "python grader",
    "北大-计算机.101",
    "Q".repeat(128),
    "é".repeat(64),
    "python\u00a0grader",
  ])("accepts %j", (name) => {
    expect(isValidQueueName(name)).toBe(true);
  });

  it.each([
    "",
    "  ",
    " python",
    "python\u00a0",
    "python\t",
    "python\u0000",
    "python\u001f",
    "python\u007f",
    "python\u0085",
    "python\u009f",
    "python\uFFFD",
    "Q".repeat(129),
    "é".repeat(65),
  ])("refuses %j", (name) => {
    expect(isValidQueueName(name)).toBe(false);
  });
});

describe("validateSubmissionId", () => {
  it.each([1n, 4821n, INT64_MAX])("accepts %s", (id) => {
    expect(validateSubmissionId(id)).toEqual([]);
  });

  it.each<[bigint, RegExp]>([
    [0n, /^must be > 0, got 0$/],
    [-1n, /^must be > 0, got -1$/],
    [INT64_MAX + 1n, /^must fit in int64 \(at most 9223372036854775807\), got/],
  ])("rejects %s", (id, description) => {
    expectViolations(validateSubmissionId(id), [["submission_id", description]]);
  });

  it("names the field it is given", () => {
    expectViolations(validateSubmissionId(0n, "request.submission_id"), [
      ["request.submission_id", /^must be > 0/],
    ]);
  });
});

describe("SCORE_LIMITS", () => {
  it("is frozen", () => {
    expect(Object.isFrozen(SCORE_LIMITS)).toBe(true);
  });
});
