import { describe, expect, it } from "vitest";
import {
  queueNameOfSubject,
  scoreSubject,
  scoreSubjectFilter,
  subjectPrefixProblem,
} from "../../src/contract/index.js";

describe("score subjects", () => {
  it("put the queue name last, under the prefix", () => {
    expect(scoreSubject("gradecast", "python-grader")).toBe("gradecast.scores.v1.python-grader");
    expect(scoreSubject("org.edx", "q_1")).toBe("org.edx.scores.v1.q_1");
  });

  it("filter one queue or every queue", () => {
    expect(scoreSubjectFilter("gradecast")).toBe("gradecast.scores.v1.*");
    expect(scoreSubjectFilter("gradecast", "java")).toBe("gradecast.scores.v1.java");
  });

  it.each(["a.b", "*", ">", "a b", ""])("refuse queue name %j that is not one token", (queue) => {
    expect(() => scoreSubject("gradecast", queue)).toThrow(/not a NATS subject token/);
  });

  it("read the queue name back from a subject", () => {
    expect(queueNameOfSubject("gradecast", "gradecast.scores.v1.java")).toBe("java");
    expect(queueNameOfSubject("gradecast", "other.scores.v1.java")).toBeUndefined();
    expect(queueNameOfSubject("gradecast", "gradecast.scores.v1.a.b")).toBeUndefined();
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
