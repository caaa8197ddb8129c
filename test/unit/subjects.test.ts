import { describe, expect, it } from "vitest";
import {
  deadLetterSubject,
  queueNameOfSubject,
  queueNameOfToken,
  queueToken,
  scoreSubjectFilter,
  scoreSubjectOfDeadLetter,
  subjectForQueue,
  subjectPrefixProblem,
} from "../../src/contract/index.js";
import { isQueuePattern, queueMatches } from "../../src/server/grader-credentials.js";

// The mapping the README shows, case by case.
const MAPPING: Array<[string, string]> = [
  ["python-grader", "python-grader"],
  ["MITx-42.01x", "MITx-42%2E01x"],
  ["MITx-42_01x", "MITx-42_01x"],
  ["a*b", "a%2Ab"],
  ["a>b", "a%3Eb"],
  ["python grader", "python%20grader"],
  ["50%", "50%25"],
  ["Sorbonne-Maths.L1", "Sorbonne-Maths%2EL1"],
  ["北大-计算机.101", "北大-计算机%2E101"],
  ["a\u00a0b", "a%C2%A0b"],
];

describe("queue tokens", () => {
  it.each(MAPPING)("%j becomes the token %j and back", (queueName, token) => {
    expect(queueToken(queueName)).toBe(token);
    expect(queueNameOfToken(token)).toBe(queueName);
    expect(subjectForQueue("gradecast", queueName)).toBe(`gradecast.scores.v1.${token}`);
    expect(queueNameOfSubject("gradecast", `gradecast.scores.v1.${token}`)).toBe(queueName);
  });

  it("never gives two queue names the same token", () => {
    const tokens = MAPPING.map(([queueName]) => queueToken(queueName));
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(queueToken("MITx-42.01x")).not.toBe(queueToken("MITx-42_01x"));
    expect(queueToken("a%2Eb")).not.toBe(queueToken("a.b"));
  });

  it.each(["a.b", "a*b", "a>b", "a b", "a%2", "a%2e", "a%ZZ", "%FF", ""])(
    "reads %j as no token of any queue",
    (token) => {
      expect(queueNameOfToken(token)).toBeUndefined();
    },
  );

  it("leaves no character of a token that NATS would read as a separator or wildcard", () => {
    for (const [queueName] of MAPPING) expect(queueToken(queueName)).not.toMatch(/[.*>\s]/u);
  });
});

describe("score and dead-letter subjects", () => {
  it("filter one queue or every queue", () => {
    expect(scoreSubjectFilter("gradecast")).toBe("gradecast.scores.v1.*");
    expect(scoreSubjectFilter("gradecast", "MITx-42.01x")).toBe(
      "gradecast.scores.v1.MITx-42%2E01x",
    );
    expect(deadLetterSubject("org.edx", "MITx-42.01x")).toBe("org.edx.dlq.v1.MITx-42%2E01x");
  });

  it("read no queue from a subject of another prefix or with more tokens", () => {
    expect(queueNameOfSubject("gradecast", "other.scores.v1.java")).toBeUndefined();
    expect(queueNameOfSubject("gradecast", "gradecast.scores.v1.a.b")).toBeUndefined();
  });

  it("map a dead-letter subject to its own queue's score subject only", () => {
    expect(scoreSubjectOfDeadLetter("gradecast.dlq.v1.MITx-42%2E01x")).toBe(
      "gradecast.scores.v1.MITx-42%2E01x",
    );
    expect(scoreSubjectOfDeadLetter("gradecast.scores.v1.q")).toBeUndefined();
    expect(scoreSubjectOfDeadLetter("$JS.API.dlq.v1.q")).toBeUndefined();
  });

  it.each([
    ["gradecast", undefined],
    ["org.openedx.grading", undefined],
    ["", /empty/],
    ["a..b", /token ""/],
    ["a.*", /wildcards/],
    ["a b", /token "a b"/],
  ])("prefix %j is %s", (prefix, problem) => {
    const found = subjectPrefixProblem(prefix);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});

describe("credential queue patterns", () => {
  it("match queue names, not their tokens", () => {
    expect(isQueuePattern("MITx-*")).toBe(true);
    expect(isQueuePattern("MITx-42.01x")).toBe(true);
    expect(queueMatches(["MITx-*"], "MITx-42.01x")).toBe(true);
    expect(queueMatches(["MITx-42.01x"], "MITx-42.01x")).toBe(true);
    expect(queueMatches(["MITx-42.01x"], "MITx-42_01x")).toBe(false);
    expect(queueMatches(["MITx-42%2E*"], "MITx-42.01x")).toBe(false);
  });

  it.each(["", "*", " lead", "trail ", "ctl\u0001"])("refuse %j", (pattern) => {
    expect(isQueuePattern(pattern)).toBe(false);
  });
});
