import { expect, test } from "bun:test";
import { ACK_DELAY_MS, takeDueAcks } from "./scheduler.ts";

test("the ACK timer takes only the connections due, each after its own delay", () => {
  // Three connections got a packet at 0, 0.6 and 0.9 delays' worth of time.
  const awaiting = new Map([
    ["a", ACK_DELAY_MS],
    ["b", 1.6 * ACK_DELAY_MS],
    ["c", 1.9 * ACK_DELAY_MS],
  ]);
  const out: string[] = [];
  // The timer set for "a" fires: "b" and "c" came in later and still wait.
  expect(takeDueAcks(awaiting, ACK_DELAY_MS, out)).toBeCloseTo(0.6 * ACK_DELAY_MS);
  expect(out).toEqual(["a"]);
  expect([...awaiting.keys()]).toEqual(["b", "c"]);
  // Within half a delay of being due counts as due (a timer cannot wait less than 1 ms).
  out.length = 0;
  expect(takeDueAcks(awaiting, 1.2 * ACK_DELAY_MS, out)).toBeCloseTo(0.7 * ACK_DELAY_MS);
  expect(out).toEqual(["b"]);
  out.length = 0;
  expect(takeDueAcks(awaiting, 2 * ACK_DELAY_MS, out)).toBeNull();
  expect(out).toEqual(["c"]);
  expect(awaiting.size).toBe(0);
});

test("a late timer takes everything overdue, oldest first", () => {
  const awaiting = new Map([["x", 1], ["y", 2], ["z", 3]]);
  const out: string[] = [];
  expect(takeDueAcks(awaiting, 50, out)).toBeNull();
  expect(out).toEqual(["x", "y", "z"]);
});
