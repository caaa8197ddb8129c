import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Gradebook, type GradebookEvent } from "../../examples/sample-lms/gradebook.js";

let dir: string;
let gradebook: Gradebook;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gradecast-gradebook-"));
  gradebook = new Gradebook(join(dir, "lms", "gradebook.sqlite"));
});

afterEach(() => {
  gradebook.close();
  rmSync(dir, { recursive: true, force: true });
});

function event(
  submissionId: bigint,
  sequence: number,
  pointsEarned: number,
  queueName = "python-grader",
): GradebookEvent {
  return {
    id: `event-${queueName}-${submissionId}-${sequence}`,
    submissionSequence: sequence,
    scoreData: {
      submissionId,
      queueName,
      userId: "learner-1",
      moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@p1",
      courseId: "course-v1:edX+DemoX+Demo_Course",
      pointsEarned,
      pointsPossible: 10,
    },
  };
}

describe("the sample LMS gradebook", () => {
  it("keeps the latest score per submission whatever the arrival order", () => {
    expect(gradebook.apply(event(1n, 2, 9))).toBe("applied");
    expect(gradebook.apply(event(1n, 1, 4))).toBe("stale");
    expect(gradebook.apply(event(1n, 3, 10))).toBe("applied");
    expect(gradebook.rows()).toMatchObject([
      {
        submissionId: 1n,
        pointsEarned: 10,
        submissionSequence: 3,
        eventId: "event-python-grader-1-3",
      },
    ]);
  });

  it("changes nothing when the same event is applied again", () => {
    expect(gradebook.apply(event(2n, 1, 5))).toBe("applied");
    expect(gradebook.apply(event(2n, 1, 5))).toBe("duplicate");
    expect(gradebook.rows()).toHaveLength(1);
  });

  it("keeps the same submission id in two queues as two rows, each with its own sequence", () => {
    expect(gradebook.apply(event(3n, 2, 9, "python-grader"))).toBe("applied");
    // Sequence 1 of another queue is that queue's first score, not a stale one.
    expect(gradebook.apply(event(3n, 1, 4, "java-grader"))).toBe("applied");
    expect(gradebook.apply(event(3n, 1, 5, "python-grader"))).toBe("stale");
    expect(gradebook.rows()).toMatchObject([
      { submissionId: 3n, queueName: "java-grader", pointsEarned: 4, submissionSequence: 1 },
      { submissionId: 3n, queueName: "python-grader", pointsEarned: 9, submissionSequence: 2 },
    ]);
  });

  it("refuses a gradebook file that keys scores by submission id alone", () => {
    const path = join(dir, "old", "gradebook.sqlite");
    mkdirSync(join(dir, "old"));
    const old = new Database(path);
    old.exec("CREATE TABLE gradebook (submission_id INTEGER PRIMARY KEY, user_id TEXT)");
    old.close();
    expect(() => new Gradebook(path)).toThrow(/keys scores by submission id alone/);
  });

  it("keeps 64-bit submission ids exact", () => {
    gradebook.apply(event(9_007_199_254_740_993n, 1, 7));
    expect(gradebook.rows()[0]?.submissionId).toBe(9_007_199_254_740_993n);
  });
});
