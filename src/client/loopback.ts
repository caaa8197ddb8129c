/**
 * Whether a `host:port` address (to dial or to listen on) stays on this machine:
 * `localhost`, `127.0.0.0/8` or `::1`. Only such addresses may carry a grader
 * token without TLS.
 */
export function isLoopbackAddress(address: string): boolean {
  const colon = address.lastIndexOf(":");
  const host = (colon < 0 ? address : address.slice(0, colon))
    .replace(/^\[|\]$/g, "")
    .toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
