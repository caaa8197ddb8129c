import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import {
  compileInScratchProject,
  importedPackages,
  installedPackages,
  installScratchProject,
  type PackedPackage,
  packPackage,
} from "../helpers/npm-packages.js";

const run = promisify(execFile);

/** What neither package may bring into a grader's or an LMS's node_modules. */
const SERVICE_DEPENDENCIES = [
  "better-sqlite3",
  "pg",
  "prom-client",
  "pino",
  "pino-pretty",
  "commander",
  "@grpc/reflection",
  "grpc-health-check",
];

/** One package of packages/, packed and installed alone into its own scratch project. */
interface Scratch {
  dir: string;
  packed: PackedPackage;
  /** tsc's diagnostics for the programs compiled there ("" when clean). */
  diagnostics: string;
}

let workDir: string;
let client: Scratch;
let subscriber: Scratch;
let nats: NatsServerHandle;
let gradecast: TestGradecast;

/** Packs packages/<name>, installs the tarball offline into a new project, compiles `sources` there. */
async function scratchProject(
  name: string,
  extraDependencies: readonly string[],
  sources: readonly string[],
): Promise<Scratch> {
  const dir = join(workDir, name);
  await mkdir(dir);
  const packed = await packPackage(name, dir);
  await installScratchProject(dir, packed, extraDependencies);
  const diagnostics = await compileInScratchProject(dir, sources);
  return { dir, packed, diagnostics };
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "gradecast-npm-"));
  // One after the other: each `npm pack` runs tsc, and the machine has two cores.
  client = await scratchProject("client", [], ["test/npm-packages/grader.ts"]);
  subscriber = await scratchProject(
    "subscriber",
    ["@nats-io/transport-node"],
    ["test/npm-packages/lms.ts", "examples/readme-subscriber.ts"],
  );
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
}, 600_000);

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("the npm packages of packages/", () => {
  it("install from their tarballs without the service's dependencies or a native build", async () => {
    for (const scratch of [client, subscriber]) {
      const installed = await installedPackages(scratch.dir);
      expect(installed.has(scratch.packed.name)).toBe(true);
      for (const name of SERVICE_DEPENDENCIES) expect(installed.has(name), name).toBe(false);
      const native = [...installed.keys()].filter((name) =>
        existsSync(join(scratch.dir, "node_modules", name, "binding.gyp")),
      );
      expect(native).toEqual([]);
    }
  });

  it("leave gRPC and every install script out of an LMS's node_modules", async () => {
    const installed = await installedPackages(subscriber.dir);
    expect([...installed.keys()].filter((name) => name.startsWith("@grpc/"))).toEqual([]);
    const withScripts = [...installed].filter(([, entry]) => entry.hasInstallScript);
    expect(withScripts.map(([name]) => name)).toEqual([]);
  });

  it("declare exactly the packages their compiled code imports", async () => {
    for (const scratch of [client, subscriber]) {
      const dist = join(scratch.dir, "node_modules", scratch.packed.name, "dist");
      const imported = [...(await importedPackages(dist))].sort();
      // A failure here: a file the package reaches imports a package its package.json does not
      // list (src/subscriber/ imports src/contract/messages.ts, never index.ts), or a listed
      // dependency is no longer used.
      expect(imported, scratch.packed.name).toEqual(
        Object.keys(scratch.packed.dependencies).sort(),
      );
    }
  });

  it("ship ESM and type declarations for their entry point", async () => {
    for (const scratch of [client, subscriber]) {
      const manifest = JSON.parse(
        await readFile(
          join(scratch.dir, "node_modules", scratch.packed.name, "package.json"),
          "utf8",
        ),
      ) as { type: string; exports: { ".": { types: string; import: string } } };
      expect(manifest.type).toBe("module");
      const entry = manifest.exports["."];
      for (const file of [entry.types, entry.import]) {
        expect(scratch.packed.files).toContain(file.replace(/^\.\//, ""));
      }
    }
  });

  it("type-check a grader, an LMS and the README's example against the installed declarations", () => {
    expect(client.diagnostics).toBe("");
    expect(subscriber.diagnostics).toBe("");
  });

  it("carry a score from a grader on @gradecast/client to an LMS on @gradecast/subscriber", async () => {
    const graded = await run(process.execPath, ["out/grader.js", gradecast.address, "4821"], {
      cwd: client.dir,
      timeout: 60_000,
    });
    const [accepted, refused] = graded.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(accepted.accepted.replayed).toBe(false);
    // INVALID_ARGUMENT with the violated field, read from the status details trailer.
    expect(refused).toEqual({ refused: { code: 3, fields: ["score_data.points_earned"] } });

    const received = await run(
      process.execPath,
      ["out/lms.js", nats.url, gradecast.config.stream.name, "1"],
      { cwd: subscriber.dir, timeout: 60_000 },
    );
    const events = received.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(events).toEqual([
      {
        id: accepted.accepted.eventId,
        subject: "gradecast.scores.v1.python-grader",
        submissionSequence: 1,
        submissionId: "4821",
        pointsEarned: 7,
        queueName: "python-grader",
      },
    ]);
  });
});
