import { describe, expect, test } from "bun:test";
import { createLogger, isLogLevel } from "./log.ts";
import type { LogFormat, LogLevel } from "./log.ts";

function capture(format: LogFormat, level: LogLevel = "debug") {
  const lines: string[] = [];
  const log = createLogger({ component: "server", format, level, write: (l) => lines.push(l) });
  return { log, lines };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("json format", () => {
  test("envelope first, then fields", () => {
    const { log, lines } = capture("json");
    log.info("listening", { addr: "127.0.0.1:4433", flows: 3, draining: false });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!);
    expect(Object.keys(rec)).toEqual(["ts", "level", "component", "event", "addr", "flows", "draining"]);
    expect(rec.ts).toMatch(ISO);
    expect(rec).toMatchObject({
      level: "info",
      component: "server",
      event: "listening",
      addr: "127.0.0.1:4433",
      flows: 3,
    });
  });

  test("errors render as their message, bigint as string, undefined omitted", () => {
    const { log, lines } = capture("json");
    log.error("accept_failed", {
      err: new Error("boom"),
      nested: { e: new TypeError("inner") },
      n: 10n,
      gone: undefined,
    });
    const rec = JSON.parse(lines[0]!);
    expect(rec.err).toBe("boom");
    expect(rec.nested).toEqual({ e: "inner" });
    expect(rec.n).toBe("10");
    expect("gone" in rec).toBe(false);
  });

  test("fields cannot overwrite the envelope", () => {
    const { log, lines } = capture("json");
    log.info("x", { level: "fake", event: "y" });
    const rec = JSON.parse(lines[0]!);
    expect(rec.level).toBe("info");
    expect(rec.event).toBe("x");
    expect(rec._level).toBe("fake");
    expect(rec._event).toBe("y");
  });

  test("a circular field degrades instead of throwing or losing the line", () => {
    const { log, lines } = capture("json");
    const a: Record<string, unknown> = {};
    a.self = a;
    log.info("circ", { a, ok: 1 });
    const rec = JSON.parse(lines[0]!);
    expect(rec.ok).toBe(1);
    expect(typeof rec.a).toBe("string");
  });
});

describe("text format", () => {
  test("timestamp, padded level, component, event, key=value", () => {
    const { log, lines } = capture("text");
    log.info("listening", { addr: "127.0.0.1:4433", flows: 2 });
    const m = /^(\S+) INFO  server listening addr=127\.0\.0\.1:4433 flows=2$/.exec(lines[0]!);
    expect(m).not.toBeNull();
    expect(m![1]).toMatch(ISO);
    log.error("e");
    expect(lines[1]).toMatch(/ ERROR server e$/);
  });

  test("values with spaces, quotes or = are quoted; errors by message; objects as JSON", () => {
    const { log, lines } = capture("text");
    log.warn("closed", {
      reason: "peer went away",
      q: 'a"b',
      eq: "k=v",
      empty: "",
      err: new Error("no route"),
      obj: { a: 1 },
    });
    expect(lines[0]).toEndWith(
      ' WARN  server closed reason="peer went away" q="a\\"b" eq="k=v" empty="" err="no route" obj={"a":1}',
    );
  });
});

describe("levels and children", () => {
  test("lines below the configured level are dropped", () => {
    const { log, lines } = capture("json", "warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(lines.map((l) => JSON.parse(l).event)).toEqual(["w", "e"]);
  });

  test("child adds fixed fields; call fields win; children nest", () => {
    const { log, lines } = capture("json");
    const peer = log.child({ peer: "10.0.0.1:5000", role: "agent" });
    peer.info("hello", { role: "connector" });
    peer.child({ flow: 7 }).info("flow_open");
    log.info("plain");
    expect(JSON.parse(lines[0]!)).toMatchObject({ peer: "10.0.0.1:5000", role: "connector" });
    expect(JSON.parse(lines[1]!)).toMatchObject({ peer: "10.0.0.1:5000", role: "agent", flow: 7 });
    expect("peer" in JSON.parse(lines[2]!)).toBe(false);
  });

  test("a throwing writer does not propagate", () => {
    const log = createLogger({
      component: "agent",
      format: "text",
      level: "info",
      write: () => {
        throw new Error("EPIPE");
      },
    });
    expect(() => log.info("x")).not.toThrow();
  });

  test("isLogLevel", () => {
    expect(isLogLevel("warn")).toBe(true);
    expect(isLogLevel("trace")).toBe(false);
    expect(isLogLevel("toString")).toBe(false);
  });
});
