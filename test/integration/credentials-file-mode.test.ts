import { chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

let dir: string;
let nats: NatsServerHandle;
let gradecast: TestGradecast | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-credentials-mode-"));
  nats = await startNatsServer();
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("the credentials file", () => {
  it("is written 0600, and a group- or world-writable one is warned about at start and reload", async () => {
    const credentialsPath = join(dir, "credentials.json");
    await addGrader({ credentialsPath, graderName: "g1", queues: ["q"], isReplacing: false });
    expect((await stat(credentialsPath)).mode & 0o777).toBe(0o600);
    const logged: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => logged.push(line) });
    gradecast = await startGradecast(nats.url, {
      auth: { kind: "tokens", credentialsPath },
      logger,
    });
    expect(logged.join("")).not.toContain("the credentials file is writable");

    await chmod(credentialsPath, 0o666);
    await gradecast.server.reloadCredentials();
    expect(logged.join("")).toContain(
      "the credentials file is writable by every user (mode 0666): whoever can write it can add a grader",
    );
  });
});
