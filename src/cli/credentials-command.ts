import { resolve } from "node:path";
import { Command, Option } from "commander";
import { GradecastError } from "../contract/index.js";
import {
  CredentialsFileError,
  GRADER_NAME_PATTERN,
  generateToken,
  hashToken,
  isQueuePattern,
  parseTokenHash,
  readCredentialsFile,
  rotationCommand,
  writeCredentialsFile,
} from "../server/index.js";
import { ConfigError } from "./config-values.js";

/** What {@link addGrader} needs. */
export interface AddGraderRequest {
  /** The credentials file; created (mode 0600, its directory 0700) when missing. */
  credentialsPath: string;
  graderName: string;
  /** Exact queue names and `prefix*` patterns. */
  queues: readonly string[];
  /** Replace a grader of the same name (a new token; the old one stops working on reload). */
  isReplacing: boolean;
}

/**
 * Adds a grader with a new random token (`gradecast_` + 32 random bytes) and returns the token:
 * the only time it exists in plain text. Only its SHA-256 is written. A grader of the same name
 * is refused unless `isReplacing`, which is also how a grader with a legacy scrypt hash moves to
 * the new form. Other graders' entries, legacy ones included, are written back unchanged.
 */
export async function addGrader(request: AddGraderRequest): Promise<string> {
  if (!GRADER_NAME_PATTERN.test(request.graderName)) {
    throw new ConfigError("NAME", "a grader name is 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  if (request.queues.length === 0) throw new ConfigError("--queues", "names no queue");
  const badQueue = request.queues.find((queue) => !isQueuePattern(queue));
  if (badQueue !== undefined) {
    throw new ConfigError(
      "--queues",
      `${JSON.stringify(badQueue)} is neither a queue name (A-Z a-z 0-9 _ -) nor a prefix followed by *`,
    );
  }
  const file = await asConfigError(readCredentialsFile(request.credentialsPath));
  if (file.graders[request.graderName] && !request.isReplacing) {
    throw new ConfigError(
      "NAME",
      `grader ${JSON.stringify(request.graderName)} already exists; pass --replace to give it a new token`,
    );
  }
  const token = generateToken();
  file.graders[request.graderName] = {
    tokenHash: hashToken(token),
    queues: [...request.queues],
  };
  await asConfigError(writeCredentialsFile(request.credentialsPath, file));
  return token;
}

/** What {@link removeGrader} needs. */
export interface RemoveGraderRequest {
  credentialsPath: string;
  graderName: string;
}

/**
 * Removes a grader from the credentials file; its token stops working when `serve` reloads
 * the file (SIGHUP). Other graders' entries are written back unchanged. A grader that is not
 * in the file is a {@link GradecastError} `not_found` naming it and the file (exit code 1).
 */
export async function removeGrader(request: RemoveGraderRequest): Promise<void> {
  const file = await asConfigError(readCredentialsFile(request.credentialsPath));
  if (!Object.hasOwn(file.graders, request.graderName)) {
    throw new GradecastError(
      "not_found",
      `no grader ${JSON.stringify(request.graderName)} in ${JSON.stringify(request.credentialsPath)}; \`gradecast credentials list\` shows the graders`,
    );
  }
  delete file.graders[request.graderName];
  await asConfigError(writeCredentialsFile(request.credentialsPath, file));
}

interface CredentialsFlags {
  credentials?: string;
}

const credentialsOption = () =>
  new Option("--credentials <file>", "the grader credentials file").env("GRADECAST_CREDENTIALS");

/** `gradecast credentials add|remove|list`: manage the graders `serve --credentials` accepts. */
export function credentialsCommand(write: (line: string) => void): Command {
  const command = new Command("credentials").description(
    "manage grader tokens: the credentials file `serve --credentials` reads (SIGHUP reloads it)",
  );
  command
    .command("add")
    .description(
      "add a grader with a new gradecast_ token; prints the token once (only its SHA-256 is stored); creates a missing file 0600 and its missing directory 0700",
    )
    .argument("<name>", "grader name; events it reports say source <source>/<name>")
    .requiredOption("--queues <list>", "comma-separated queue names and prefix* patterns")
    .option(
      "--replace",
      "give an existing grader a new token and queues (also moves a legacy scrypt hash to SHA-256)",
      false,
    )
    .addOption(credentialsOption())
    .action(
      async (name: string, flags: CredentialsFlags & { queues: string; replace: boolean }) => {
        const token = await addGrader({
          credentialsPath: credentialsPathOf(flags),
          graderName: name,
          queues: flags.queues
            .split(",")
            .map((queue) => queue.trim())
            .filter((queue) => queue !== ""),
          isReplacing: flags.replace,
        });
        write(token);
        process.stderr.write(
          `gradecast: grader ${JSON.stringify(name)} added; the token above is not stored, keep it now (send SIGHUP to a running serve to load it)\n`,
        );
      },
    );
  command
    .command("remove")
    .description(
      "remove a grader: its token stops working once serve reloads the file (SIGHUP); exit 1 if there is no such grader",
    )
    .argument("<name>", "grader name, as `credentials list` prints it")
    .addOption(credentialsOption())
    .action(async (name: string, flags: CredentialsFlags) => {
      await removeGrader({ credentialsPath: credentialsPathOf(flags), graderName: name });
      process.stderr.write(
        `gradecast: grader ${JSON.stringify(name)} removed (send SIGHUP to a running serve to load the file)\n`,
      );
    });
  command
    .command("list")
    .description(
      "print each grader and its queues (never the hashes); on stderr, how to rotate legacy scrypt hashes",
    )
    .addOption(credentialsOption())
    .action(async (flags: CredentialsFlags) => {
      const credentialsPath = credentialsPathOf(flags);
      const file = await asConfigError(readCredentialsFile(credentialsPath));
      for (const [name, grader] of Object.entries(file.graders)) {
        write(`${name}\t${grader.queues.join(",")}`);
      }
      for (const [name, grader] of Object.entries(file.graders)) {
        if (parseTokenHash(grader.tokenHash)?.kind !== "scrypt") continue;
        process.stderr.write(
          `gradecast: grader ${JSON.stringify(name)} has a legacy scrypt token hash; give it a new token with: ${rotationCommand({ name, queues: grader.queues }, credentialsPath)}\n`,
        );
      }
    });
  return command;
}

function credentialsPathOf(flags: CredentialsFlags): string {
  if (flags.credentials === undefined || flags.credentials === "") {
    throw new ConfigError("--credentials", "is required (or set GRADECAST_CREDENTIALS)");
  }
  return resolve(flags.credentials);
}

async function asConfigError<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof CredentialsFileError) {
      throw new ConfigError("--credentials", error.message);
    }
    throw error;
  }
}
