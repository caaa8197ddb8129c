import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("the README's SDK example", () => {
  it("is examples/readme-subscriber.ts, which tsc compiles with the rest", () => {
    const example = read("examples/readme-subscriber.ts");
    expect(read("README.md")).toContain(`\`\`\`ts\n${example}\`\`\``);
  });
});
