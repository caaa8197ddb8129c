import { existsSync } from "node:fs";
import { readdir, readFile, readlink } from "node:fs/promises";

/** The TCP socket state /proc/net/tcp writes for a listening socket. */
const TCP_LISTEN = "0A";

/**
 * Whether {@link listeningPortsOf} can see another process's sockets (Linux /proc). Elsewhere a
 * caller picks a free port first, accepting that another process may take it meanwhile.
 */
export const canSeeListeningPorts = existsSync("/proc/self/net/tcp");

/**
 * The TCP ports process `pid` listens on right now, read from /proc: the sockets among its
 * file descriptors that /proc/<pid>/net/tcp{,6} lists as LISTEN. Lets a child bind port 0 and
 * the test find the port it got, instead of picking a "free" port that another test may take
 * between the pick and the bind. Empty once the process is gone.
 */
export async function listeningPortsOf(pid: number): Promise<number[]> {
  const socketInodes = new Set<string>();
  let descriptors: string[];
  try {
    descriptors = await readdir(`/proc/${pid}/fd`);
  } catch (error) {
    if (isGone(error)) return [];
    throw error;
  }
  for (const descriptor of descriptors) {
    const target = await readlink(`/proc/${pid}/fd/${descriptor}`).catch((error: unknown) => {
      // Closed between the listing and the read: not a socket we could connect to anyway.
      if (isGone(error)) return "";
      throw error;
    });
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined) socketInodes.add(inode);
  }
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    const text = await readFile(`/proc/${pid}/net/${table}`, "utf8").catch((error: unknown) => {
      if (isGone(error)) return "";
      throw error;
    });
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, localAddress, , state, , , , , , inode] = fields;
      if (state !== TCP_LISTEN || inode === undefined || !socketInodes.has(inode)) continue;
      const portHex = localAddress?.split(":").at(-1);
      if (portHex !== undefined) ports.add(Number.parseInt(portHex, 16));
    }
  }
  return [...ports];
}

function isGone(error: unknown): boolean {
  const code = error instanceof Error && "code" in error ? error.code : undefined;
  return code === "ENOENT" || code === "ESRCH";
}
