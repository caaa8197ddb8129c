/**
 * Whether a NATS subject matches a subscription filter: tokens split on `.`, `*` matches one
 * token, a final `>` matches one or more.
 */
export function subjectMatchesFilter(subject: string, filter: string): boolean {
  const subjectTokens = subject.split(".");
  const filterTokens = filter.split(".");
  for (const [index, token] of filterTokens.entries()) {
    if (token === ">") return index === filterTokens.length - 1 && subjectTokens.length > index;
    const subjectToken = subjectTokens[index];
    if (subjectToken === undefined) return false;
    if (token !== "*" && token !== subjectToken) return false;
  }
  return subjectTokens.length === filterTokens.length;
}

/** Whether a consumer with these filters (none: the whole stream) takes `subject`. */
export function consumerTakesSubject(filters: readonly string[], subject: string): boolean {
  return filters.length === 0 || filters.some((filter) => subjectMatchesFilter(subject, filter));
}
