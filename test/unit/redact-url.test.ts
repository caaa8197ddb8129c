import { describe, expect, it } from "vitest";
import { redactUrl, redactUrls } from "../../src/store/redact-url.js";

describe("redactUrl", () => {
  it.each([
    ["nats://gc:s3cret@127.0.0.1:4222", "nats://gc:***@127.0.0.1:4222"],
    ["nats://t0ken@127.0.0.1:4222", "nats://***@127.0.0.1:4222"],
    ["tls://gc:s3cret@nats.example:4222", "tls://gc:***@nats.example:4222"],
    ["postgres://gc:s3cret@db:5432/gradecast", "postgres://gc:***@db:5432/gradecast"],
    [
      "postgres://gc@db:5432/gradecast?password=s3cret",
      "postgres://gc@db:5432/gradecast?password=***",
    ],
    [
      "postgresql://db/gradecast?sslmode=require&PASSWORD=s3cret",
      "postgresql://db/gradecast?sslmode=require&PASSWORD=***",
    ],
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
  ])("hides the secret of %s", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it.each([
    ["nats://gc:s3cret@bad host:4222", "nats://gc:***@bad host:4222"],
    ["postgres://db name/x?password=s3cret&a=b", "postgres://db name/x?password=***&a=b"],
  ])("masks a string that is not a URL by pattern: %s", (text, shown) => {
    expect(redactUrl(text)).toBe(shown);
  });

  it("redacts each URL of a list", () => {
    expect(redactUrls("nats://a:p1@n1:4222, nats://b:p2@n2:4222")).toBe(
      "nats://a:***@n1:4222,nats://b:***@n2:4222",
    );
  });
});
