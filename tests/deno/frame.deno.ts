/**
 * The framing layer under Deno: every control message and the datagram
 * header round-trip, and malformed input comes back as typed errors.
 */
import assert from "node:assert/strict";
import {
  type ControlMessage,
  createControlReader,
  type DatagramHeader,
  decodeControl,
  encodeControl,
  encodeDatagram,
  MAX_TUNNEL_PAYLOAD,
  parseDatagram,
  validateServiceName,
} from "../../core/frame/mod.ts";
import { denoTest } from "./deno.ts";

const MESSAGES: ControlMessage[] = [
  { type: "hello", version: 1, role: "agent", name: "laptop-7" },
  { type: "hello", version: 1, role: "connector", name: "" },
  { type: "welcome", version: 1, observed: { host: "203.0.113.9", port: 61000 } },
  { type: "observed", observed: { host: "2001:db8::1", port: 443 } },
  { type: "register", req: 1, service: "db" },
  { type: "deregister", req: 0xffffffff, service: "a.b_c-d" },
  { type: "open", req: 7, service: "echo" },
  { type: "ack", req: 7, channel: 0xffff },
  { type: "nack", req: 8, code: "unknown_service", reason: "no connector for echo" },
  { type: "service_status", service: "echo", up: false },
  { type: "goaway", reason: "draining", alternate: "relay2.example:4433" },
];

denoTest("every control message survives encode, a byte-by-byte stream and decode", () => {
  const stream = MESSAGES.map((m) => encodeControl(m));
  const reader = createControlReader();
  const out = [];
  for (const frame of stream) for (const byte of frame) out.push(...reader.push(Uint8Array.of(byte)));
  assert.equal(reader.pending(), 0);
  assert.deepEqual(
    out.map((d) => (d.ok ? d.value : d.error)),
    MESSAGES,
  );
});

denoTest("decode errors are values with the documented kinds", () => {
  const kindOf = (bytes: number[]) => {
    const d = decodeControl(Uint8Array.from(bytes));
    assert.equal(d.ok, false);
    return d.ok ? undefined : d.error.kind;
  };
  assert.equal(kindOf([0x7f]), "unknown_type");
  assert.equal(kindOf([0x10, 0, 0]), "truncated"); // REGISTER cut inside req
  assert.equal(kindOf([0x30, 1, 0x61, 1, 9]), "trailing_bytes");
  assert.equal(kindOf([0x30, 1, 0x61, 2]), "bad_value"); // up must be 0 or 1
  assert.equal(kindOf([0x31, 1, 0xff, 0]), "bad_utf8");
  assert.equal(kindOf([0x12, 0, 0, 0, 1, 2, 0x2d, 0x61]), "bad_value"); // service "-a"
});

denoTest("an oversized length prefix poisons the stream reader", () => {
  const reader = createControlReader();
  const [first] = reader.push(Uint8Array.of(0x10, 0x01));
  assert.equal(first?.ok, false);
  assert.equal(first?.ok ? undefined : first?.error.kind, "oversized");
  assert.deepEqual(reader.push(encodeControl(MESSAGES[0]!)), [first]);
});

denoTest("datagram header round trip, and truncated / oversized datagrams", () => {
  const payload = new Uint8Array(MAX_TUNNEL_PAYLOAD).fill(0xab);
  const dgram = encodeDatagram(0xfffe, 0xdeadbeef, payload);
  const into: DatagramHeader = { channel: 0, flow: 0, payloadLength: 0 };
  assert.equal(parseDatagram(dgram, dgram.length, into), null);
  assert.deepEqual(into, { channel: 0xfffe, flow: 0xdeadbeef, payloadLength: MAX_TUNNEL_PAYLOAD });
  assert.equal(parseDatagram(dgram, 5, into)?.kind, "truncated");
  const big = new Uint8Array(dgram.length + 1);
  assert.equal(parseDatagram(big, big.length, into)?.kind, "oversized");
  assert.throws(() => encodeDatagram(1, 1, new Uint8Array(MAX_TUNNEL_PAYLOAD + 1)));
});

denoTest("service names: 1..63 bytes of [A-Za-z0-9._-], not starting with punctuation", () => {
  for (const ok of ["a", "db", "A.b_c-9", "x".repeat(63)]) assert.equal(validateServiceName(ok), undefined, ok);
  for (const bad of ["", "-a", ".a", "a b", "é", "x".repeat(64)]) {
    assert.notEqual(validateServiceName(bad), undefined, bad);
  }
});
