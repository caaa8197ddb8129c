import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const buf = join(repoRoot, "node_modules/.bin/buf");
const scratch = mkdtempSync(join(tmpdir(), "gradecast-breaking-"));

/** Copies the module (buf.yaml + proto/) into a scratch dir, optionally rewriting score.proto. */
function copyModule(name: string, rewrite?: (scoreProto: string) => string): string {
  const dir = join(scratch, name);
  cpSync(join(repoRoot, "proto"), join(dir, "proto"), { recursive: true });
  cpSync(join(repoRoot, "buf.yaml"), join(dir, "buf.yaml"));
  if (rewrite) {
    const file = join(dir, "proto/gradecast/v1/score.proto");
    writeFileSync(file, rewrite(readFileSync(file, "utf8")));
  }
  return dir;
}

function bufBreaking(current: string, against: string) {
  return spawnSync(buf, ["breaking", current, "--against", against], { encoding: "utf8" });
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("buf breaking guards the contract", () => {
  const released = copyModule("released");

  it("accepts the contract unchanged", () => {
    const result = bufBreaking(copyModule("same"), released);
    expect(result.stderr + result.stdout).toBe("");
    expect(result.status).toBe(0);
  });

  it("fails when a field number of ExternalGraderScoreData changes", () => {
    const renumbered = copyModule("renumbered", (text) =>
      text.replace("int32 points_earned = 2;", "int32 points_earned = 10;"),
    );
    const result = bufBreaking(renumbered, released);
    expect(result.status).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/points_earned|field "?2"?/i);
  });
});
