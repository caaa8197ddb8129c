import { execFile } from "node:child_process";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The repository root: packages/ and package-lock.json are read from here. */
export const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** One npm package of packages/, packed. */
export interface PackedPackage {
  name: string;
  version: string;
  /** The tarball, in the destination `npm pack` was given. */
  tarball: string;
  /** Its sha512 integrity, as a lockfile records it. */
  integrity: string;
  /** Paths inside the tarball, relative to its `package/` folder. */
  files: string[];
  /** The `dependencies` of its package.json. */
  dependencies: Record<string, string>;
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  hasInstallScript?: boolean;
  [field: string]: unknown;
}

interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

/** Runs `npm pack` in packages/<name> (its `prepack` builds dist/) and writes the tarball to `destination`. */
export async function packPackage(name: string, destination: string): Promise<PackedPackage> {
  const packageDir = join(REPO_ROOT, "packages", name);
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", destination], {
    cwd: packageDir,
    maxBuffer: 16 * 1024 * 1024,
  });
  // The prepack script's own output (none when tsc succeeds) would come before the JSON.
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as Array<{
    name: string;
    version: string;
    filename: string;
    integrity: string;
    files: Array<{ path: string }>;
  }>;
  if (!packed) throw new Error(`npm pack in ${packageDir} reported no tarball`);
  const manifest = JSON.parse(await readFile(join(packageDir, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  return {
    name: packed.name,
    version: packed.version,
    tarball: join(destination, packed.filename),
    integrity: packed.integrity,
    files: packed.files.map((file) => file.path),
    dependencies: manifest.dependencies ?? {},
  };
}

/**
 * The package.json and package-lock.json of a project that depends on `packed` (its tarball in
 * the project's folder) and on `extraDependencies` (names of the repository's own dependencies,
 * at its ranges). The lockfile is cut from the repository's: the versions the repository tests,
 * with their tarball URLs on `registry`, so `npm install --offline` takes each tarball from the
 * npm cache that `npm ci` filled, without the registry metadata a fresh resolution would need.
 */
export function scratchLockfile(
  repoLock: Lockfile,
  repoDependencies: Record<string, string>,
  packed: PackedPackage,
  extraDependencies: readonly string[],
  registry: string,
): { manifest: object; lockfile: object } {
  const tarballSpec = `file:${packed.tarball.slice(packed.tarball.lastIndexOf("/") + 1)}`;
  const rootDependencies: Record<string, string> = { [packed.name]: tarballSpec };
  for (const name of extraDependencies) {
    const range = repoDependencies[name];
    if (range === undefined) throw new Error(`${name} is not a dependency of the repository`);
    rootDependencies[name] = range;
  }
  const manifest = {
    name: "gradecast-scratch",
    version: "0.0.0",
    private: true,
    type: "module",
    dependencies: rootDependencies,
  };
  const packages: Record<string, LockEntry> = {
    "": { name: manifest.name, version: manifest.version, dependencies: rootDependencies },
    [`node_modules/${packed.name}`]: {
      version: packed.version,
      resolved: tarballSpec,
      integrity: packed.integrity,
      dependencies: packed.dependencies,
    },
  };
  // Node's lookup: <from>/node_modules/<name>, then each enclosing node_modules upward.
  const locate = (name: string, from: string): string => {
    let base = from;
    for (;;) {
      const candidate = base === "" ? `node_modules/${name}` : `${base}/node_modules/${name}`;
      if (repoLock.packages[candidate]) return candidate;
      if (base === "")
        throw new Error(`${name} (needed by ${from || "the project"}) is not locked`);
      const cut = base.lastIndexOf("/node_modules/");
      base = cut === -1 ? "" : base.slice(0, cut);
    }
  };
  const pending: Array<[name: string, from: string]> = [
    ...Object.keys(packed.dependencies).map((name): [string, string] => [name, ""]),
    ...extraDependencies.map((name): [string, string] => [name, ""]),
  ];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const path = locate(...next);
    if (packages[path]) continue;
    const {
      dev: _dev,
      devOptional: _devOptional,
      peer: _peer,
      ...entry
    } = repoLock.packages[path] as LockEntry;
    // Lockfiles written here leave registry URLs out (omit-lockfile-registry-resolved);
    // without one npm reads the package's registry metadata to find the tarball, which an
    // offline install finds only if it happens to be cached. With one it needs the tarball only.
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    entry.resolved ??= `${registry}${name}/-/${name.split("/").pop()}-${entry.version}.tgz`;
    packages[path] = entry;
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      pending.push([name, path]);
    }
  }
  return { manifest, lockfile: { ...manifest, lockfileVersion: 3, requires: true, packages } };
}

/**
 * Makes `dir` (empty, holding `packed.tarball`) an npm project that installed the tarball and
 * `extraDependencies` with `npm install --offline`, as a user's project would.
 */
export async function installScratchProject(
  dir: string,
  packed: PackedPackage,
  extraDependencies: readonly string[] = [],
): Promise<void> {
  const repoLock = JSON.parse(
    await readFile(join(REPO_ROOT, "package-lock.json"), "utf8"),
  ) as Lockfile;
  const repoManifest = JSON.parse(await readFile(join(REPO_ROOT, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  const { manifest, lockfile } = scratchLockfile(
    repoLock,
    repoManifest.dependencies,
    packed,
    extraDependencies,
    (await run("npm", ["config", "get", "registry"], { cwd: dir })).stdout
      .trim()
      .replace(/\/?$/, "/"),
  );
  await writeFile(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(dir, "package-lock.json"), `${JSON.stringify(lockfile, null, 2)}\n`);
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund"], {
    cwd: dir,
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** What an installed project holds: every package of node_modules/.package-lock.json. */
export async function installedPackages(dir: string): Promise<Map<string, LockEntry>> {
  const hidden = JSON.parse(
    await readFile(join(dir, "node_modules", ".package-lock.json"), "utf8"),
  ) as Lockfile;
  const installed = new Map<string, LockEntry>();
  for (const [path, entry] of Object.entries(hidden.packages)) {
    if (path === "") continue;
    installed.set(path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length), entry);
  }
  return installed;
}

/**
 * Copies `sources` (repository paths) into `dir`/src and compiles them with the repository's
 * tsc into `dir`/out against what `dir` installed: the packages' own declarations, strict, as a
 * user's project would. Emits even on type errors; returns tsc's diagnostics ("" when clean).
 */
export async function compileInScratchProject(
  dir: string,
  sources: readonly string[],
): Promise<string> {
  await mkdir(join(dir, "src"), { recursive: true });
  for (const source of sources) {
    await copyFile(join(REPO_ROOT, source), join(dir, "src", basename(source)));
  }
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      lib: ["ES2022"],
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      noUncheckedIndexedAccess: true,
      // Node's own types from the repository: a user's project brings its @types/node.
      typeRoots: [join(REPO_ROOT, "node_modules", "@types")],
      types: ["node"],
      rootDir: "src",
      outDir: "out",
    },
    include: ["src"],
  };
  await writeFile(join(dir, "tsconfig.json"), `${JSON.stringify(tsconfig, null, 2)}\n`);
  const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [tsc, "-p", dir], { cwd: dir }, (error, stdout, stderr) => {
      if (error && error.code !== 2 && error.code !== 1) reject(error);
      else resolve(`${stdout}${stderr}`.trim());
    });
  });
}

/** Every package a tree of compiled ESM files imports (bare specifiers, not `node:`). */
export async function importedPackages(dir: string): Promise<Set<string>> {
  const imported = new Set<string>();
  const specifier =
    /(?:^|[\s;])(?:import|export)\s[^;]*?\bfrom\s*"([^"]+)"|import\s*\(?\s*"([^"]+)"/g;
  for (const file of await readdir(dir, { recursive: true })) {
    if (!file.endsWith(".js")) continue;
    const text = await readFile(join(dir, file), "utf8");
    for (const match of text.matchAll(specifier)) {
      const name = match[1] ?? match[2] ?? "";
      if (name.startsWith(".") || name.startsWith("node:")) continue;
      const parts = name.split("/");
      imported.add(name.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? name));
    }
  }
  return imported;
}
