import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const OPENSSL = "/usr/bin/openssl";
const run = promisify(execFile);

/** A throwaway CA with a server certificate (127.0.0.1, localhost) and a client certificate. */
export interface TestCertificates {
  /** The temp dir holding every file below; `cleanup()` removes it. */
  dir: string;
  caPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  clientCertPath: string;
  clientKeyPath: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** Client certificates whose subject CN is a grader name: `python-grader-1`, and `unknown-grader`. */
  graderCert: Buffer;
  graderKey: Buffer;
  strangerCert: Buffer;
  strangerKey: Buffer;
  cleanup(): Promise<void>;
}

/** Makes a CA and two leaf certificates with the openssl CLI (P-256 keys, valid one day). */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "gradecast-tls-"));
  const path = (name: string) => join(dir, name);
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    await run(OPENSSL, [
      "req",
      "-x509",
      ...newKey,
      "-keyout",
      path("ca.key"),
      "-out",
      path("ca.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=gradecast test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    const issue = async (
      name: string,
      extensions: string,
      commonName = `gradecast test ${name}`,
    ) => {
      await writeFile(path(`${name}.ext`), extensions);
      await run(OPENSSL, [
        "req",
        ...newKey,
        "-keyout",
        path(`${name}.key`),
        "-out",
        path(`${name}.csr`),
        "-subj",
        `/CN=${commonName}`,
      ]);
      await run(OPENSSL, [
        "x509",
        "-req",
        "-in",
        path(`${name}.csr`),
        "-CA",
        path("ca.pem"),
        "-CAkey",
        path("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        path(`${name}.ext`),
        "-out",
        path(`${name}.pem`),
      ]);
    };
    await issue(
      "server",
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    await issue("client", "extendedKeyUsage=clientAuth\n");
    await issue("grader", "extendedKeyUsage=clientAuth\n", "python-grader-1");
    await issue("stranger", "extendedKeyUsage=clientAuth\n", "unknown-grader");
    return {
      dir,
      caPath: path("ca.pem"),
      serverCertPath: path("server.pem"),
      serverKeyPath: path("server.key"),
      clientCertPath: path("client.pem"),
      clientKeyPath: path("client.key"),
      ca: await readFile(path("ca.pem")),
      serverCert: await readFile(path("server.pem")),
      serverKey: await readFile(path("server.key")),
      clientCert: await readFile(path("client.pem")),
      clientKey: await readFile(path("client.key")),
      graderCert: await readFile(path("grader.pem")),
      graderKey: await readFile(path("grader.key")),
      strangerCert: await readFile(path("stranger.pem")),
      strangerKey: await readFile(path("stranger.key")),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`cannot make test certificates with ${OPENSSL}`, { cause: error });
  }
}
