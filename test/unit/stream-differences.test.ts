import { describe, expect, it } from "vitest";
import { differingFields } from "../../src/events/stream.js";

describe("differingFields", () => {
  it.each([
    ["the same settings", { max_age: 0, num_replicas: 3 }, { max_age: 0, num_replicas: 3 }, []],
    [
      "the same subjects in another order",
      { subjects: ["a.*", "b.*"] },
      { subjects: ["b.*", "a.*"] },
      [],
    ],
    ["a subject more", { subjects: ["a.*"] }, { subjects: ["a.*", "b.*"] }, ["subjects"]],
    [
      "a subject replaced",
      { subjects: ["a.*", "c.*"] },
      { subjects: ["a.*", "b.*"] },
      ["subjects"],
    ],
    [
      "other replicas",
      { num_replicas: 1, max_age: 0 },
      { num_replicas: 3, max_age: 0 },
      ["num_replicas"],
    ],
    ["a setting the server does not show", {}, { max_bytes: -1 }, ["max_bytes"]],
    ["a server setting gradecast does not set", { max_msgs: 10, max_age: 0 }, { max_age: 0 }, []],
  ])("%s", (_case, current, wanted, expected) => {
    expect(differingFields(current, wanted)).toEqual(expected);
  });
});
