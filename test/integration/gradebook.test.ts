import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

function event(submissionId: bigint, sequence: number, pointsEarned: number): GradebookEvent {
  return {
    id: `event-${submissionId}-${sequence}`,
    submissionSequence: sequence,
    scoreData: {
      submissionId,
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
      { submissionId: 1n, pointsEarned: 10, submissionSequence: 3, eventId: "event-1-3" },
    ]);
  });

  it("changes nothing when the same event is applied again", () => {
    expect(gradebook.apply(event(2n, 1, 5))).toBe("applied");
    expect(gradebook.apply(event(2n, 1, 5))).toBe("duplicate");
    expect(gradebook.rows()).toHaveLength(1);
  });

  it("keeps 64-bit submission ids exact", () => {
    gradebook.apply(event(9_007_199_254_740_993n, 1, 7));
    expect(gradebook.rows()[0]?.submissionId).toBe(9_007_199_254_740_993n);
  });
});
