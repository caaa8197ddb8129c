import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader, removeGrader } from "../../src/cli/credentials-command.js";
import { createScoreClient } from "../../src/client/index.js";
import { GradecastError } from "../../src/contract/index.js";
import { runTsxScript } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

let dir: string;
let nats: NatsServerHandle;
let gradecast: TestGradecast | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-credentials-command-"));
  nats = await startNatsServer();
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("gradecast credentials add", () => {
  it("creates a missing directory (and its missing parents) 0700 and the file in it 0600", async () => {
    const credentialsPath = join(dir, "etc", "gradecast", "credentials.json");
    await addGrader({ credentialsPath, graderName: "g1", queues: ["q"], isReplacing: false });
    for (const created of [join(dir, "etc"), join(dir, "etc", "gradecast")]) {
      expect((await stat(created)).mode & 0o777).toBe(0o700);
    }
    expect((await stat(credentialsPath)).mode & 0o777).toBe(0o600);
    const file = JSON.parse(await readFile(credentialsPath, "utf8"));
    expect(Object.keys(file.graders)).toEqual(["g1"]);
  });
});

describe("gradecast credentials remove", () => {
  it("removes a grader: after a reload its token is refused, and the other grader's still works", async () => {
    const credentialsPath = join(dir, "remove", "credentials.json");
    const keptToken = await addGrader({
      credentialsPath,
      graderName: "kept",
      queues: ["python-grader"],
      isReplacing: false,
    });
    const removedToken = await addGrader({
      credentialsPath,
      graderName: "removed",
      queues: ["python-grader"],
      isReplacing: false,
    });
    gradecast = await startGradecast(nats.url, { auth: { kind: "tokens", credentialsPath } });
    const submitWith = (token: string, submissionId: bigint) => {
      const client = createScoreClient(gradecast?.address ?? "", { token, deadlineMs: 10_000 });
      return client
        .submitScore(sampleScoreData({ submissionId, queueName: "python-grader" }))
        .then(
          () => "OK",
          (error: { code: number }) => `code ${error.code}`,
        )
        .finally(() => client.close());
    };
    expect(await submitWith(removedToken, 71_001n)).toBe("OK");

    await removeGrader({ credentialsPath, graderName: "removed" });
    expect(Object.keys(JSON.parse(await readFile(credentialsPath, "utf8")).graders)).toEqual([
      "kept",
    ]);
    expect((await stat(credentialsPath)).mode & 0o777).toBe(0o600);
    await gradecast.server.reloadCredentials();
    // 16 is UNAUTHENTICATED.
    expect(await submitWith(removedToken, 71_002n)).toBe("code 16");
    expect(await submitWith(keptToken, 71_003n)).toBe("OK");
  });

  it("refuses a grader that is not in the file with an error naming it and the file, exit code 1", async () => {
    const credentialsPath = join(dir, "absent", "credentials.json");
    await addGrader({ credentialsPath, graderName: "g1", queues: ["q"], isReplacing: false });
    await expect(removeGrader({ credentialsPath, graderName: "nobody" })).rejects.toThrow(
      GradecastError,
    );

    const run = await runTsxScript(
      "src/cli/run.ts",
      ["credentials", "remove", "nobody", "--credentials", credentialsPath],
      { timeoutMs: 60_000, killSignal: "SIGKILL" },
    );
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 1,
      stdout: "",
      stderr: `gradecast: no grader "nobody" in ${JSON.stringify(credentialsPath)}; \`gradecast credentials list\` shows the graders\n`,
    });
    expect(Object.keys(JSON.parse(await readFile(credentialsPath, "utf8")).graders)).toEqual([
      "g1",
    ]);
  });
});
