import type { Logger } from "pino";
import type { Grader } from "./grader-credentials.js";

/** Most graders one warning spells a command for; the count says how many there are. */
const MAX_COMMANDS_LOGGED = 20;

/** The graders whose token is still stored as a legacy scrypt hash. */
export function legacyGradersOf(graders: readonly Grader[]): Grader[] {
  return graders.filter((grader) => grader.tokenHash.kind === "scrypt");
}

/**
 * The command that gives a grader a new `gradecast_` token stored as a SHA-256, keeping its
 * queues: the migration off a legacy hash. Its old token stops working at the next reload.
 */
export function rotationCommand(
  grader: Pick<Grader, "name" | "queues">,
  credentialsPath: string,
): string {
  return [
    "gradecast credentials add",
    shellWord(grader.name),
    "--queues",
    shellWord(grader.queues.join(",")),
    "--replace --credentials",
    shellWord(credentialsPath),
  ].join(" ");
}

/**
 * One warning when some graders still have legacy scrypt hashes (start-up and every reload):
 * while any does, a token without the `gradecast_` prefix costs scrypt per such grader to
 * refuse (bounded, see LegacyTokenCheck), so the operator should rotate them. Nothing when none.
 */
export function warnOfLegacyHashes(
  logger: Logger,
  credentialsPath: string,
  graders: readonly Grader[],
): void {
  const legacy = legacyGradersOf(graders);
  if (legacy.length === 0) return;
  logger.warn(
    {
      credentials: credentialsPath,
      legacyGraders: legacy.length,
      rotate: legacy
        .slice(0, MAX_COMMANDS_LOGGED)
        .map((grader) => rotationCommand(grader, credentialsPath)),
    },
    "graders with legacy scrypt token hashes: each token without the gradecast_ prefix costs ~50 ms of CPU per such grader to check; give each a new token with the command in `rotate`, hand it to the grader, then reload (SIGHUP)",
  );
}

/** `word` as one POSIX shell word: bare when it is plain, else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
