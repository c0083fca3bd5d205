// Control messages carried on QUIC stream 0: u16 BE length, u8 type, body.
// This file is the only place that knows their byte layout.

import type { Address, Reader } from "./bytes.ts";
import {
  createReader,
  createWriter,
  failRead,
  finishRead,
  readAddress,
  readStr,
  readU16,
  readU32,
  readU8,
  writeAddress,
  writeStr,
  writeU16,
  writeU32,
  writeU8,
} from "./bytes.ts";
import type { Decoded } from "./errors.ts";

export type { Address } from "./bytes.ts";

/** The newest protocol version this code speaks. */
export const PROTOCOL_VERSION = 2;
/** Every version this code speaks, newest first (the order a client offers them in). */
export const PROTOCOL_VERSIONS: readonly number[] = [2, 1];
/** The ALPN identifier of PROTOCOL_VERSION; version N is `ztna/N`. */
export const ALPN = "ztna/2";

/** ALPN identifiers for `versions`, in the order given (newest first for an offer). */
export function alpnFor(versions: readonly number[] = PROTOCOL_VERSIONS): string[] {
  for (const v of versions) checkVersion(v);
  return versions.map((v) => `ztna/${v}`);
}

/**
 * The version an ALPN identifier (as negotiated, bytes or text) stands for,
 * or undefined when it is not one this code speaks.
 */
export function versionOfAlpn(alpn: Uint8Array | string): number | undefined {
  const text = typeof alpn === "string" ? alpn : new TextDecoder().decode(alpn);
  const m = /^ztna\/([1-9][0-9]{0,2})$/.exec(text);
  const v = m ? Number(m[1]) : NaN;
  return PROTOCOL_VERSIONS.includes(v) ? v : undefined;
}

function checkVersion(version: number): void {
  if (!PROTOCOL_VERSIONS.includes(version)) {
    throw new Error(`protocol version ${String(version)} is not one of ${PROTOCOL_VERSIONS.join(", ")}`);
  }
}
/** Upper bound of the length prefix (type byte + body). */
export const MAX_CONTROL_MESSAGE = 4096;
/** Size of the u16 length prefix in front of every control message. */
export const CONTROL_LENGTH_PREFIX = 2;

/** Who a client is, said in HELLO: the one role vocabulary of the programs, the relay and the metrics. */
export const ROLES = ["agent", "connector"] as const;
export type Role = (typeof ROLES)[number];

export type NackCode =
  | "invalid_request"
  | "not_authorised"
  | "unknown_service"
  | "limit_exceeded"
  | "draining"
  | "duplicate";

/**
 * A planned restart, announced in GOAWAY (version 2): come back after
 * `reconnectInMs` and keep trying at a short fixed interval until `tryForMs`
 * after the connection ended. Both are u32 milliseconds; tryForMs > 0.
 */
export interface RestartHint {
  reconnectInMs: number;
  tryForMs: number;
}

export type ControlMessage =
  /** `software` (version 2 and later): the client's build, e.g. "0.1.0 (4aeb86c)"; '' = not said. */
  | { type: "hello"; version: number; role: Role; name: string; software?: string }
  | { type: "welcome"; version: number; observed: Address }
  | { type: "observed"; observed: Address }
  | { type: "register"; req: number; service: string }
  | { type: "deregister"; req: number; service: string }
  | { type: "open"; req: number; service: string }
  | { type: "ack"; req: number; channel: number }
  | { type: "nack"; req: number; code: NackCode; reason: string }
  | { type: "service_status"; service: string; up: boolean }
  /** `restart` (version 2 and later): absent = not a planned restart (leaving, or unknown). */
  | { type: "goaway"; reason: string; alternate: string; restart?: RestartHint }
  /** A question without side effects (ztna doctor): may I act for `service` ('' = none asked), and is it served? */
  | { type: "probe"; req: number; service: string }
  | ProbeReply;

/** The server's answer to PROBE. */
export interface ProbeReply {
  type: "probe_reply";
  req: number;
  /** The server's clock, ms since the epoch (for clock skew). */
  serverTimeMs: number;
  /** Whether this connection's identity may open (agents) or register (connectors) the service; null when none was asked. */
  allowed: boolean | null;
  /** Live connectors of the service on this server (0 when not allowed). */
  connectors: number;
  /** Connectors that deregistered and only finish their flows (0 when not allowed). */
  draining: number;
  /** The server's build, e.g. `0.1.0 (4aeb86c)`. */
  software: string;
}

export type ControlType = ControlMessage["type"];

/**
 * Wire type byte of each message, and its fields after the type byte
 * (docs/protocol.md §2.3). `str` is a u8 byte length and UTF-8; `service` a
 * str holding a valid service name; `address` a u8 family (4 or 6), 4 or 16
 * address bytes and a u16 port. Bytes: 0x0_ session, 0x1_ requests,
 * 0x2_ answers, 0x3_ notifications.
 */
export const CONTROL_TYPE_BYTES = {
  hello: 0x01, // client → server, first: u8 version, u8 role (ROLE_BYTES), str name; v2: + str software
  welcome: 0x02, // server → client, answers HELLO: u8 version, address observed (the client as the server sees it)
  observed: 0x03, // server → client: address observed (the client's address changed)
  register: 0x10, // connector → server: u32 req, service; answered by ACK (its channel) or NACK
  deregister: 0x11, // connector → server: u32 req, service; answered by ACK (channel 0) or NACK
  open: 0x12, // agent → server: u32 req, service; answered by ACK (its channel) or NACK
  probe: 0x13, // client → server (v2): u32 req, service or empty str; answered by PROBE_REPLY, changes nothing
  ack: 0x20, // server → client: u32 req, u16 channel
  nack: 0x21, // server → client: u32 req, u8 code (NACK_CODE_BYTES), str reason
  probe_reply: 0x22, // server → client (v2): u32 req, u32 time_hi, u32 time_lo, u8 allowed (0 no, 1 yes, 2 none asked), u16 connectors, u16 draining, str software
  service_status: 0x30, // server → agent: service, u8 up (0 or 1)
  goaway: 0x31, // server → client: str reason, str alternate (host:port or empty); v2: + u32 reconnect_in ms, u32 try_for ms (0 = no restart)
} as const satisfies Record<ControlType, number>;

export const ROLE_BYTES = { agent: 1, connector: 2 } as const satisfies Record<Role, number>;

export const NACK_CODE_BYTES = {
  invalid_request: 1,
  not_authorised: 2,
  unknown_service: 3,
  limit_exceeded: 4,
  draining: 5,
  duplicate: 6,
} as const satisfies Record<NackCode, number>;

// Reverse tables indexed by wire byte (holes are undefined).
const NACK_BY_BYTE: (NackCode | undefined)[] = [];
for (const [code, byte] of Object.entries(NACK_CODE_BYTES)) NACK_BY_BYTE[byte] = code as NackCode;

const MAX_SERVICE_NAME = 63;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Returns why `name` is not a valid service name, or undefined when it is. */
export function validateServiceName(name: string): string | undefined {
  // Valid names are ASCII, so UTF-16 length equals byte length for them, and
  // any string longer than 63 code units is longer than 63 bytes too.
  if (name.length < 1 || name.length > MAX_SERVICE_NAME) {
    return `must be 1 to ${MAX_SERVICE_NAME} bytes long (got ${name.length})`;
  }
  if (!SERVICE_NAME.test(name)) {
    return "must start with a letter or digit and contain only letters, digits, '.', '_' and '-'";
  }
  return undefined;
}

// ---------------------------------------------------------------- encoding

// One scratch buffer for all encodes: encoding is synchronous, so it is never
// shared, and each call copies out exactly the bytes it wrote.
const scratch = createWriter(CONTROL_LENGTH_PREFIX + MAX_CONTROL_MESSAGE);

function writeService(w: typeof scratch, name: string, what: string): void {
  const reason = validateServiceName(name);
  if (reason !== undefined) throw new Error(`${what} service ${JSON.stringify(name)} ${reason}`);
  writeStr(w, name, `${what} service`);
}

/**
 * Encodes a message with its length prefix, in the layout of protocol
 * `version` (the one negotiated for the connection; HELLO follows its own
 * version field). Fields the version does not have are left out. Throws a
 * plain Error only for programmer errors (values out of range, strings over
 * 255 bytes, invalid service names or hosts); callers validate untrusted
 * input first.
 */
export function encodeControl(msg: ControlMessage, version: number = PROTOCOL_VERSION): Uint8Array {
  checkVersion(version);
  const w = scratch;
  w.pos = CONTROL_LENGTH_PREFIX; // prefix is patched in once the size is known
  switch (msg.type) {
    case "hello": {
      const role = ROLE_BYTES[msg.role];
      if (role === undefined) throw new Error(`HELLO role must be 'agent' or 'connector', got ${String(msg.role)}`);
      writeU8(w, CONTROL_TYPE_BYTES.hello, "type");
      writeU8(w, msg.version, "HELLO version");
      writeU8(w, role, "HELLO role");
      writeStr(w, msg.name, "HELLO name");
      if (msg.version >= 2) writeStr(w, msg.software ?? "", "HELLO software");
      break;
    }
    case "welcome":
      writeU8(w, CONTROL_TYPE_BYTES.welcome, "type");
      writeU8(w, msg.version, "WELCOME version");
      writeAddress(w, msg.observed, "WELCOME observed");
      break;
    case "observed":
      writeU8(w, CONTROL_TYPE_BYTES.observed, "type");
      writeAddress(w, msg.observed, "OBSERVED observed");
      break;
    case "register":
    case "deregister":
    case "open": {
      const what = msg.type.toUpperCase();
      writeU8(w, CONTROL_TYPE_BYTES[msg.type], "type");
      writeU32(w, msg.req, `${what} req`);
      writeService(w, msg.service, what);
      break;
    }
    case "ack":
      writeU8(w, CONTROL_TYPE_BYTES.ack, "type");
      writeU32(w, msg.req, "ACK req");
      writeU16(w, msg.channel, "ACK channel");
      break;
    case "nack": {
      const code = NACK_CODE_BYTES[msg.code];
      if (code === undefined) throw new Error(`NACK code ${String(msg.code)} is not a known NackCode`);
      writeU8(w, CONTROL_TYPE_BYTES.nack, "type");
      writeU32(w, msg.req, "NACK req");
      writeU8(w, code, "NACK code");
      writeStr(w, msg.reason, "NACK reason");
      break;
    }
    case "service_status":
      if (typeof msg.up !== "boolean") throw new Error(`SERVICE_STATUS up must be a boolean, got ${String(msg.up)}`);
      writeU8(w, CONTROL_TYPE_BYTES.service_status, "type");
      writeService(w, msg.service, "SERVICE_STATUS");
      writeU8(w, msg.up ? 1 : 0, "SERVICE_STATUS up");
      break;
    case "goaway":
      writeU8(w, CONTROL_TYPE_BYTES.goaway, "type");
      writeStr(w, msg.reason, "GOAWAY reason");
      writeStr(w, msg.alternate, "GOAWAY alternate");
      if (version >= 2) {
        const restart = msg.restart;
        if (restart !== undefined && !(Number.isInteger(restart.tryForMs) && restart.tryForMs > 0)) {
          throw new Error(`GOAWAY restart tryForMs must be a whole number > 0, got ${String(restart.tryForMs)}`);
        }
        writeU32(w, restart?.reconnectInMs ?? 0, "GOAWAY reconnect_in");
        writeU32(w, restart?.tryForMs ?? 0, "GOAWAY try_for");
      }
      break;
    case "probe":
      writeU8(w, CONTROL_TYPE_BYTES.probe, "type");
      writeU32(w, msg.req, "PROBE req");
      if (msg.service === "") writeStr(w, "", "PROBE service");
      else writeService(w, msg.service, "PROBE");
      break;
    case "probe_reply": {
      const t = msg.serverTimeMs;
      if (!Number.isSafeInteger(t) || t < 0) {
        throw new Error(`PROBE_REPLY serverTimeMs must be a whole number >= 0, got ${String(t)}`);
      }
      writeU8(w, CONTROL_TYPE_BYTES.probe_reply, "type");
      writeU32(w, msg.req, "PROBE_REPLY req");
      writeU32(w, Math.floor(t / 2 ** 32), "PROBE_REPLY time_hi");
      writeU32(w, t % 2 ** 32, "PROBE_REPLY time_lo");
      writeU8(w, msg.allowed === null ? 2 : msg.allowed ? 1 : 0, "PROBE_REPLY allowed");
      writeU16(w, msg.connectors, "PROBE_REPLY connectors");
      writeU16(w, msg.draining, "PROBE_REPLY draining");
      writeStr(w, msg.software, "PROBE_REPLY software");
      break;
    }
    default:
      throw new Error(`unknown control message type ${JSON.stringify((msg as { type: unknown }).type)}`);
  }
  // The scratch buffer holds at most 2 + MAX_CONTROL_MESSAGE bytes, so the
  // writer has already refused anything over the limit.
  w.view.setUint16(0, w.pos - CONTROL_LENGTH_PREFIX);
  return w.buf.slice(0, w.pos);
}

// ---------------------------------------------------------------- decoding

function readService(r: Reader): string {
  const name = readStr(r, "service");
  if (r.error !== undefined) return "";
  const reason = validateServiceName(name);
  if (reason !== undefined) failRead(r, "bad_value", `${r.context} service ${JSON.stringify(name)} ${reason}`);
  return name;
}

function readRole(r: Reader): Role {
  const at = r.pos;
  const b = readU8(r, "role");
  if (b === ROLE_BYTES.agent) return "agent";
  if (b !== ROLE_BYTES.connector) {
    failRead(r, "bad_value", `${r.context} role ${b} at offset ${at} is not 1 (agent) or 2 (connector)`);
  }
  return "connector";
}

function readNackCode(r: Reader): NackCode {
  const at = r.pos;
  const b = readU8(r, "code");
  const code = NACK_BY_BYTE[b];
  if (code !== undefined) return code;
  failRead(r, "bad_value", `${r.context} code ${b} at offset ${at} is not a NACK code (1..6)`);
  return "invalid_request";
}

/** A service name, or '' for "none". */
function readOptionalService(r: Reader): string {
  const at = r.pos;
  if (r.buf[at] === 0) return readStr(r, "service");
  return readService(r);
}

function readAllowed(r: Reader): boolean | null {
  const at = r.pos;
  const b = readU8(r, "allowed");
  if (b > 2) failRead(r, "bad_value", `${r.context} allowed ${b} at offset ${at} is not 0, 1 or 2`);
  return b === 2 ? null : b === 1;
}

function readUp(r: Reader): boolean {
  const at = r.pos;
  const b = readU8(r, "up");
  if (b > 1) failRead(r, "bad_value", `${r.context} up ${b} at offset ${at} is not 0 or 1`);
  return b === 1;
}

function readRestart(r: Reader): RestartHint | undefined {
  const reconnectInMs = readU32(r, "reconnect_in");
  const at = r.pos;
  const tryForMs = readU32(r, "try_for");
  if (r.error !== undefined || tryForMs > 0) return { reconnectInMs, tryForMs };
  // try_for 0 means "no restart"; then reconnect_in must be 0 too (one value, one encoding).
  if (reconnectInMs !== 0) {
    failRead(
      r,
      "bad_value",
      `${r.context} reconnect_in ${reconnectInMs} with try_for 0 at offset ${at}: no restart has no reconnect time`,
    );
  }
  return undefined;
}

// Reads one message body after the type byte; undefined for an unknown type.
// Field reads are sticky on error, so the object built here is simply
// discarded by the caller when r.error is set.
function readBody(r: Reader, type: number, version: number): ControlMessage | undefined {
  switch (type) {
    case CONTROL_TYPE_BYTES.hello: {
      r.context = "HELLO";
      const helloVersion = readU8(r, "version");
      const role = readRole(r);
      const name = readStr(r, "name");
      // HELLO's layout follows its own version field: it comes before any version is agreed.
      if (helloVersion < 2) return { type: "hello", version: helloVersion, role, name };
      return { type: "hello", version: helloVersion, role, name, software: readStr(r, "software") };
    }
    case CONTROL_TYPE_BYTES.welcome: {
      r.context = "WELCOME";
      const version = readU8(r, "version");
      return { type: "welcome", version, observed: readAddress(r, "observed") };
    }
    case CONTROL_TYPE_BYTES.observed:
      r.context = "OBSERVED";
      return { type: "observed", observed: readAddress(r, "observed") };
    case CONTROL_TYPE_BYTES.register: {
      r.context = "REGISTER";
      const req = readU32(r, "req");
      return { type: "register", req, service: readService(r) };
    }
    case CONTROL_TYPE_BYTES.deregister: {
      r.context = "DEREGISTER";
      const req = readU32(r, "req");
      return { type: "deregister", req, service: readService(r) };
    }
    case CONTROL_TYPE_BYTES.open: {
      r.context = "OPEN";
      const req = readU32(r, "req");
      return { type: "open", req, service: readService(r) };
    }
    case CONTROL_TYPE_BYTES.ack: {
      r.context = "ACK";
      const req = readU32(r, "req");
      return { type: "ack", req, channel: readU16(r, "channel") };
    }
    case CONTROL_TYPE_BYTES.nack: {
      r.context = "NACK";
      const req = readU32(r, "req");
      const code = readNackCode(r);
      return { type: "nack", req, code, reason: readStr(r, "reason") };
    }
    case CONTROL_TYPE_BYTES.service_status: {
      r.context = "SERVICE_STATUS";
      const service = readService(r);
      return { type: "service_status", service, up: readUp(r) };
    }
    case CONTROL_TYPE_BYTES.goaway: {
      r.context = "GOAWAY";
      const reason = readStr(r, "reason");
      const alternate = readStr(r, "alternate");
      if (version < 2) return { type: "goaway", reason, alternate };
      const restart = readRestart(r);
      return restart === undefined
        ? { type: "goaway", reason, alternate }
        : { type: "goaway", reason, alternate, restart };
    }
    case CONTROL_TYPE_BYTES.probe: {
      r.context = "PROBE";
      const req = readU32(r, "req");
      return { type: "probe", req, service: readOptionalService(r) };
    }
    case CONTROL_TYPE_BYTES.probe_reply: {
      r.context = "PROBE_REPLY";
      const req = readU32(r, "req");
      const hi = readU32(r, "time_hi");
      const lo = readU32(r, "time_lo");
      if (hi >= 2 ** 21) failRead(r, "bad_value", `PROBE_REPLY time_hi ${hi} is beyond 2^53 ms`);
      const allowed = readAllowed(r);
      const connectors = readU16(r, "connectors");
      const draining = readU16(r, "draining");
      const software = readStr(r, "software");
      return { type: "probe_reply", req, serverTimeMs: hi * 2 ** 32 + lo, allowed, connectors, draining, software };
    }
    default:
      return undefined;
  }
}

function hex2(b: number): string {
  return `0x${b.toString(16).padStart(2, "0")}`;
}

/**
 * Decodes one control message body (type byte + fields, no length prefix) in
 * the layout of protocol `version` (HELLO follows its own version field).
 * Never throws on input; every failure is reported as a FrameError.
 */
export function decodeControl(body: Uint8Array, version: number = PROTOCOL_VERSION): Decoded<ControlMessage> {
  checkVersion(version);
  if (body.length > MAX_CONTROL_MESSAGE) {
    return {
      ok: false,
      error: {
        kind: "oversized",
        message: `control message of ${body.length} bytes exceeds MAX_CONTROL_MESSAGE (${MAX_CONTROL_MESSAGE})`,
      },
    };
  }
  const r = createReader(body, "control message");
  const type = readU8(r, "type");
  if (r.error !== undefined) return { ok: false, error: r.error };
  const value = readBody(r, type, version);
  if (value === undefined) {
    return { ok: false, error: { kind: "unknown_type", message: `unknown control message type ${hex2(type)}` } };
  }
  finishRead(r);
  if (r.error !== undefined) return { ok: false, error: r.error };
  return { ok: true, value };
}

// ---------------------------------------------------------------- stream reader

export interface ControlReader {
  /**
   * Feeds the next chunk of stream 0 and returns every message (or error)
   * it completes, in order. Partial messages are kept for the next push.
   */
  push(chunk: Uint8Array): Decoded<ControlMessage>[];
  /** Bytes of an incomplete message held back; non-zero at end of stream means it was cut short. */
  pending(): number;
}

/**
 * Reassembles length-prefixed control messages from arbitrary stream chunks.
 * An oversized length prefix poisons the reader: the stream can no longer be
 * framed, so every later push returns that same error.
 */
export function createControlReader(
  maxMessage: number = MAX_CONTROL_MESSAGE,
  version: number = PROTOCOL_VERSION,
): ControlReader {
  checkVersion(version);
  const decode = (body: Uint8Array) => decodeControl(body, version);
  // The limit can be lowered per stream but never raised past the protocol's.
  if (!Number.isInteger(maxMessage) || maxMessage < 1 || maxMessage > MAX_CONTROL_MESSAGE) {
    throw new Error(`maxMessage must be an integer in 1..${MAX_CONTROL_MESSAGE}, got ${String(maxMessage)}`);
  }
  // Holds at most one incomplete message (prefix included); allocated on the
  // first split message since most chunks carry whole messages.
  let partial: Uint8Array | undefined;
  let partialLen = 0;
  let poisoned: Decoded<ControlMessage> | undefined;

  const oversized = (len: number): Decoded<ControlMessage> => ({
    ok: false,
    error: {
      kind: "oversized",
      message: `control message length ${len} exceeds the maximum of ${maxMessage} bytes; the stream cannot be framed`,
    },
  });
  const zeroLength = (): Decoded<ControlMessage> => ({
    ok: false,
    error: {
      kind: "truncated",
      message: "control message truncated: length prefix is 0, but a message needs at least its type byte",
    },
  });
  function push(chunk: Uint8Array): Decoded<ControlMessage>[] {
    if (poisoned !== undefined) return [poisoned];
    const out: Decoded<ControlMessage>[] = [];
    let off = 0;

    // 1. Finish a message left over from earlier chunks.
    if (partialLen > 0) {
      const buf = partial!;
      if (partialLen < CONTROL_LENGTH_PREFIX) {
        const n = Math.min(CONTROL_LENGTH_PREFIX - partialLen, chunk.length);
        buf.set(chunk.subarray(0, n), partialLen);
        partialLen += n;
        off = n;
        if (partialLen < CONTROL_LENGTH_PREFIX) return out;
      }
      const len = (buf[0]! << 8) | buf[1]!;
      if (len > maxMessage) {
        poisoned = oversized(len);
        out.push(poisoned);
        return out;
      }
      if (len === 0) {
        out.push(zeroLength());
        partialLen = 0;
      } else {
        const total = CONTROL_LENGTH_PREFIX + len;
        const n = Math.min(total - partialLen, chunk.length - off);
        buf.set(chunk.subarray(off, off + n), partialLen);
        partialLen += n;
        off += n;
        if (partialLen < total) return out;
        out.push(decode(buf.subarray(CONTROL_LENGTH_PREFIX, total)));
        partialLen = 0;
      }
    }

    // 2. Decode whole messages straight out of the chunk, without copying.
    while (chunk.length - off >= CONTROL_LENGTH_PREFIX) {
      const len = (chunk[off]! << 8) | chunk[off + 1]!;
      if (len > maxMessage) {
        poisoned = oversized(len);
        out.push(poisoned);
        return out;
      }
      if (len === 0) {
        out.push(zeroLength());
        off += CONTROL_LENGTH_PREFIX;
        continue;
      }
      const end = off + CONTROL_LENGTH_PREFIX + len;
      if (end > chunk.length) break;
      out.push(decode(chunk.subarray(off + CONTROL_LENGTH_PREFIX, end)));
      off = end;
    }

    // 3. Keep the incomplete tail; its prefix (if present) was checked above,
    //    so it fits in 2 + maxMessage bytes.
    if (off < chunk.length) {
      partial ??= new Uint8Array(CONTROL_LENGTH_PREFIX + maxMessage);
      partial.set(chunk.subarray(off), 0);
      partialLen = chunk.length - off;
    }
    return out;
  }

  return { push, pending: () => partialLen };
}
