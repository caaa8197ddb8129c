import type { GradebookRow } from "./gradebook.js";

/** Prints the gradebook as a small table. */
export function printGradebook(rows: readonly GradebookRow[], write: (line: string) => void): void {
  write("gradebook (latest score per submission):");
  write(
    `  ${"submission".padEnd(12)}${"user".padEnd(36)}${"score".padEnd(8)}${"seq".padEnd(5)}event`,
  );
  for (const row of rows) {
    write(
      `  ${String(row.submissionId).padEnd(12)}${row.userId.padEnd(36)}${`${row.pointsEarned}/${row.pointsPossible}`.padEnd(8)}${String(row.submissionSequence).padEnd(5)}${row.eventId}`,
    );
  }
}
