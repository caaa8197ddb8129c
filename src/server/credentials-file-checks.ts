import { stat } from "node:fs/promises";
import type { Logger } from "pino";

/**
 * What is unsafe about the credentials file itself: whoever can write it can add a grader
 * for any queue. Empty when it is fine (or cannot be read: loading reports that).
 */
export async function credentialsFileProblems(path: string): Promise<string[]> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats) return [];
  const problems: string[] = [];
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, "0");
    problems.push(
      `is writable by ${stats.mode & 0o002 ? "every user" : "its group"} (mode ${mode}): whoever can write it can add a grader; chmod 600 it`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid && stats.uid !== 0) {
    problems.push(
      `is owned by uid ${stats.uid}, neither this service's user (uid ${uid}) nor root: that user can add graders`,
    );
  }
  return problems;
}

/** One warning per problem of the credentials file, at start-up and at every reload. */
export async function warnOfUnsafeCredentialsFile(logger: Logger, path: string): Promise<void> {
  for (const problem of await credentialsFileProblems(path)) {
    logger.warn({ credentials: path }, `the credentials file ${problem}`);
  }
}
