import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Debian's interpreter, the one with python3-grpcio and python3-protobuf. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Runs a Python script of test/helpers with the generated stubs of gen/python importable. */
export function runPython(script: string, args: string[], input?: string): string {
  return execFileSync(SYSTEM_PYTHON, [`${repoRoot}test/helpers/${script}`, ...args], {
    cwd: repoRoot,
    input,
    encoding: "utf8",
    env: { ...process.env, PYTHONPATH: `${repoRoot}gen/python`, PYTHONDONTWRITEBYTECODE: "1" },
  }).trim();
}
