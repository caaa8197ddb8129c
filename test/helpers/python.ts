import { execFile, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Debian's interpreter, the one with python3-grpcio and python3-protobuf. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** A script of test/helpers, run from the repo root with gen/python importable. */
const scriptArgs = (script: string, args: string[]) => [
  `${repoRoot}test/helpers/${script}`,
  ...args,
];
const pythonEnv = () => ({
  ...process.env,
  PYTHONPATH: `${repoRoot}gen/python`,
  PYTHONDONTWRITEBYTECODE: "1",
});

/** Runs a Python script of test/helpers with the generated stubs of gen/python importable. */
export function runPython(script: string, args: string[], input?: string): string {
  return execFileSync(SYSTEM_PYTHON, scriptArgs(script, args), {
    cwd: repoRoot,
    input,
    encoding: "utf8",
    env: pythonEnv(),
  }).trim();
}

/**
 * {@link runPython} without blocking the event loop, for scripts that call a server running
 * in this process (a synchronous call would starve it). Rejects with the script's stderr when
 * it exits non-zero or outlives `timeoutMs`.
 */
export function runPythonAsync(
  script: string,
  args: string[],
  input?: string,
  timeoutMs = 20_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      SYSTEM_PYTHON,
      scriptArgs(script, args),
      { cwd: repoRoot, encoding: "utf8", env: pythonEnv(), timeout: timeoutMs },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`${script} ${args.join(" ")} failed:\n${stderr}`, { cause: error }));
        } else {
          resolve(stdout.trim());
        }
      },
    );
    child.stdin?.end(input ?? "");
  });
}
