/** Query parameters that carry a secret in PostgreSQL and NATS URLs. */
const SECRET_PARAMETERS = /^(password|pass|passwd|token|secret|sslpassword|auth_token)$/i;
const HIDDEN = "***";

/**
 * A URL as it may be logged or shown: the password of `user:password@` and the
 * value of secret query parameters (`?password=`) replaced by `***`. A string
 * that does not parse as a URL is masked the same way by pattern, never echoed
 * with its secret.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = HIDDEN;
    // A user alone (`nats://token@host`) is how NATS URLs carry a token.
    else if (
      parsed.username &&
      parsed.protocol !== "postgres:" &&
      parsed.protocol !== "postgresql:"
    ) {
      parsed.username = HIDDEN;
    }
    for (const name of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAMETERS.test(name)) parsed.searchParams.set(name, HIDDEN);
    }
    return parsed.toString();
  } catch {
    return url
      .replace(/\/\/([^/@:]*):[^/@]*@/g, `//$1:${HIDDEN}@`)
      .replace(
        /([?&](?:password|pass|passwd|token|secret|sslpassword|auth_token)=)[^&#]*/gi,
        `$1${HIDDEN}`,
      );
  }
}

/** A comma-separated list of URLs, each redacted. */
export function redactUrls(urls: string): string {
  return urls
    .split(",")
    .map((url) => redactUrl(url.trim()))
    .join(",");
}
