import { expect, test } from "bun:test";
import { createRequestReader, createResponseReader, encodeGet, encodeValue } from "./kv-protocol.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

test("requests split and joined anywhere come out whole", () => {
  const reader = createRequestReader();
  const stream = new Uint8Array([...encodeGet("k1"), ...encodeGet("key-two"), ...encodeGet("3")]);
  const keys: string[] = [];
  for (let i = 0; i < stream.length; i += 3) keys.push(...reader.push(stream.subarray(i, i + 3)));
  expect(keys).toEqual(["k1", "key-two", "3"]);
});

test("a line that is not a GET is an error", () => {
  expect(() => createRequestReader().push(bytes("PUT x\n"))).toThrow("not a GET");
  expect(() => createRequestReader().push(new Uint8Array(300).fill(0x41))).toThrow("too long");
});

test("answers are counted across chunk boundaries, misses included", () => {
  const value = new Uint8Array(128).fill(0x0a); // newlines inside a value are body, not framing
  const stream = new Uint8Array([
    ...encodeValue(value),
    ...encodeValue(null),
    ...encodeValue(new Uint8Array(0)),
    ...encodeValue(value),
  ]);
  for (const step of [1, 7, 64, stream.length]) {
    const reader = createResponseReader();
    let n = 0;
    for (let i = 0; i < stream.length; i += step) n += reader.push(stream.subarray(i, i + step));
    expect(n).toBe(4);
  }
  expect(createResponseReader().push(encodeValue(value).subarray(0, 100))).toBe(0);
  expect(() => createResponseReader().push(bytes("x\n"))).toThrow("bad answer");
});
