import { describe, expect, test } from "bun:test";
import { FlagError, parseFlags, ROWS } from "./flags.ts";

describe("bench flags", () => {
  test("defaults: every row but naive, 5 s phases, the issue's rates and scale steps", () => {
    const c = parseFlags([]);
    expect(c.rows).toEqual(ROWS.filter((r) => r !== "naive"));
    expect(c.seconds).toBe(5);
    expect(c.rates).toEqual([25_000, 50_000, 100_000, 150_000, 0]);
    expect(c.scaleSteps).toEqual([1_000, 5_000, 10_000]);
    expect(c.rrConnections).toEqual([1, 20]);
    expect(c.abuseHandshakes).toBe(2_000);
    expect(c.ssh).toBe(true);
  });

  test("--only takes rows and groups, in run order; --skip removes", () => {
    expect(parseFlags(["--only", "tcp-rr,rtt"]).rows).toEqual(["rtt", "tcp-rr"]);
    expect(parseFlags(["--only=tcp"]).rows).toEqual(["tcp-bulk", "tcp-rr"]);
    expect(parseFlags(["--only", "udp", "--skip", "goodput"]).rows).toEqual(["rtt", "neighbour"]);
    expect(parseFlags(["--only", "neighbor"]).rows).toEqual(["neighbour"]);
    expect(parseFlags(["--skip", "scale,abuse"]).rows).not.toContain("scale");
  });

  test("--quick shortens, explicit flags still win", () => {
    const q = parseFlags(["--quick", "--seconds", "3"]);
    expect(q.seconds).toBe(3);
    expect(q.scaleSteps).toEqual([1_000]);
    expect(q.rates).toEqual([25_000, 100_000, 0]);
    expect(parseFlags(["--quick", "--scale", "10000,2000"]).scaleSteps).toEqual([2_000, 10_000]);
  });

  test("mistakes are clear errors, not silent defaults", () => {
    expect(() => parseFlags(["--only", "bogus"])).toThrow(FlagError);
    expect(() => parseFlags(["--secs", "3"])).toThrow("unknown flag --secs");
    expect(() => parseFlags(["--seconds"])).toThrow("needs a value");
    expect(() => parseFlags(["--rates", "25000,x"])).toThrow("comma-separated numbers");
    expect(() => parseFlags(["--only", "rtt", "--skip", "rtt"])).toThrow("no rows left");
    expect(() => parseFlags(["rtt"])).toThrow("unexpected argument");
    expect(() => parseFlags(["--help"])).toThrow("usage:");
  });
});
