import { describe, expect, test } from "bun:test";
import { createLogger } from "./log.ts";
import { createLogThrottle, createRepeatLog } from "./log-repeats.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    component: "test",
    format: "json",
    level: "debug",
    write: (l) => lines.push(JSON.parse(l)),
  });
  return { log, lines };
}

describe("createRepeatLog", () => {
  test("logs the first occurrence at once, then one line with the count per window", () => {
    const { log, lines } = capture();
    const repeats = createRepeatLog(log, { windowMs: 60_000 });
    for (let i = 0; i < 60; i++) {
      repeats.log("error", "open_refused", "db|not_authorised", { service: "db", code: "not_authorised", try: i });
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", event: "open_refused", service: "db", try: 0 });
    repeats.flush();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({
      level: "error",
      event: "open_refused",
      service: "db",
      try: 59,
      repeated: 59,
      window_s: 60,
    });
    // Nothing new: no line, and the key is forgotten.
    repeats.flush();
    expect(lines).toHaveLength(2);
    // Quiet for a window: forgotten, so the next one is logged at once.
    repeats.log("error", "open_refused", "db|not_authorised", { service: "db", try: 100 });
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ try: 100 });
    expect(lines[2]!.repeated).toBeUndefined();
    repeats.close();
  });

  test("keys are independent: another service or code is logged at once", () => {
    const { log, lines } = capture();
    const repeats = createRepeatLog(log);
    repeats.log("info", "open_refused", "a", { service: "a" });
    repeats.log("info", "open_refused", "b", { service: "b" });
    repeats.log("info", "register_refused", "a", { service: "a" });
    repeats.log("info", "open_refused", "a", { service: "a" });
    expect(lines.map((l) => `${l.event}:${l.service}`)).toEqual([
      "open_refused:a",
      "open_refused:b",
      "register_refused:a",
    ]);
    repeats.close();
    expect(lines.at(-1)).toMatchObject({ event: "open_refused", service: "a", repeated: 1 });
  });

  test("the timer reports counts by itself once per window", async () => {
    const { log, lines } = capture();
    const repeats = createRepeatLog(log, { windowMs: 40 });
    repeats.log("warn", "x", "k", {});
    repeats.log("warn", "x", "k", {});
    repeats.log("warn", "x", "k", {});
    const deadline = Date.now() + 2_000;
    while (lines.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(lines[1]).toMatchObject({ event: "x", repeated: 2 });
    repeats.close();
  });

  test("beyond maxKeys new keys are still logged, every time", () => {
    const { log, lines } = capture();
    const repeats = createRepeatLog(log, { maxKeys: 1 });
    repeats.log("info", "e", "1", {});
    repeats.log("info", "e", "2", {});
    repeats.log("info", "e", "2", {});
    repeats.log("info", "e", "1", {});
    expect(lines).toHaveLength(3);
    repeats.close();
  });
});

describe("createLogThrottle", () => {
  test("one line per key per interval; the next line says how many were held back", () => {
    const throttle = createLogThrottle(1_000);
    expect(throttle.allow("a", 0)).toBe(0);
    expect(throttle.allow("a", 10)).toBeNull();
    expect(throttle.allow("a", 999)).toBeNull();
    // Another key has its own interval.
    expect(throttle.allow("b", 500)).toBe(0);
    expect(throttle.allow("a", 1_000)).toBe(2);
    expect(throttle.allow("a", 1_500)).toBeNull();
    expect(throttle.allow("a", 5_000)).toBe(1);
    expect(throttle.allow("a", 9_000)).toBe(0);
  });
});
