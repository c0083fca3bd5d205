// Cursor reader/writer for the framing layer. Reads never throw: the first
// failure is recorded on the reader (sticky) and later reads become no-ops
// returning placeholders, so a decoder can read all fields straight through
// and check `r.error` once. Writers throw plain Errors, but only for
// programmer errors (out-of-range numbers, over-long strings, bad hosts).

import type { FrameError, FrameErrorKind } from "./errors.ts";

import type { Address } from "../net/address.ts";

export type { Address } from "../net/address.ts";

export const MAX_STRING_BYTES = 255;

// ignoreBOM keeps a leading U+FEFF in the string; the default would strip it
// and break the round trip for strings that start with one.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

// Returned after a failed read so callers never see undefined.
const NO_ADDRESS: Address = Object.freeze({ host: "", port: 0 });

// ---------------------------------------------------------------- reading

export interface Reader {
  readonly buf: Uint8Array;
  pos: number;
  /** Message name used in error sentences, e.g. "REGISTER". */
  context: string;
  /** The first failure; once set, every read returns a placeholder. */
  error: FrameError | undefined;
}

export function createReader(buf: Uint8Array, context: string): Reader {
  return { buf, pos: 0, context, error: undefined };
}

/** Records a failure unless an earlier one already happened (first wins). */
export function failRead(r: Reader, kind: FrameErrorKind, message: string): void {
  if (r.error === undefined) r.error = { kind, message };
}

// True when n bytes are available. `part` refines the field name in the error
// sentence; it is a separate argument so the success path builds no strings.
function take(r: Reader, n: number, field: string, part?: string): boolean {
  if (r.error !== undefined) return false;
  const have = r.buf.length - r.pos;
  if (have >= n) return true;
  const what = part === undefined ? field : `${field} ${part}`;
  failRead(
    r,
    "truncated",
    `${r.context} truncated: need ${n} byte${n === 1 ? "" : "s"} for ${what} at offset ${r.pos}, have ${have}`,
  );
  return false;
}

export function readU8(r: Reader, field: string): number {
  return take(r, 1, field) ? r.buf[r.pos++]! : 0;
}

export function readU16(r: Reader, field: string): number {
  if (!take(r, 2, field)) return 0;
  const b = r.buf;
  const p = r.pos;
  r.pos = p + 2;
  return (b[p]! << 8) | b[p + 1]!;
}

export function readU32(r: Reader, field: string): number {
  if (!take(r, 4, field)) return 0;
  const b = r.buf;
  const p = r.pos;
  r.pos = p + 4;
  // `>>> 0` turns the signed 32-bit result of the shifts back into unsigned.
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/** u8 byte length, then that many bytes of UTF-8 (invalid -> bad_utf8). */
export function readStr(r: Reader, field: string): string {
  if (!take(r, 1, field, "length")) return "";
  const len = r.buf[r.pos++]!;
  if (!take(r, len, field)) return "";
  if (len === 0) return "";
  const start = r.pos;
  r.pos = start + len;
  try {
    return utf8Decoder.decode(r.buf.subarray(start, start + len));
  } catch {
    failRead(r, "bad_utf8", `${r.context} ${field} is not valid UTF-8 (${len} bytes at offset ${start})`);
    return "";
  }
}

/** u8 family (4 or 6), 4 or 16 address bytes, u16 port. */
export function readAddress(r: Reader, field: string): Address {
  if (!take(r, 1, field, "family")) return NO_ADDRESS;
  const familyAt = r.pos;
  const family = r.buf[r.pos++]!;
  let host: string;
  if (family === 4) {
    if (!take(r, 4, field, "IPv4 bytes")) return NO_ADDRESS;
    host = formatIPv4(r.buf, r.pos);
    r.pos += 4;
  } else if (family === 6) {
    if (!take(r, 16, field, "IPv6 bytes")) return NO_ADDRESS;
    if (isIPv4Mapped(r.buf, r.pos)) {
      // One value, one encoding: mapped addresses must travel as family 4.
      failRead(
        r,
        "bad_value",
        `${r.context} ${field} at offset ${familyAt} is an IPv4-mapped IPv6 address; it must be sent as family 4`,
      );
      return NO_ADDRESS;
    }
    host = formatIPv6(r.buf, r.pos);
    r.pos += 16;
  } else {
    failRead(
      r,
      "bad_value",
      `${r.context} ${field} has address family ${family} at offset ${familyAt}; expected 4 or 6`,
    );
    return NO_ADDRESS;
  }
  if (!take(r, 2, field, "port")) return NO_ADDRESS;
  return { host, port: readU16(r, field) };
}

/** After the last field: any bytes left over are an error. */
export function finishRead(r: Reader): void {
  if (r.error !== undefined) return;
  const left = r.buf.length - r.pos;
  if (left > 0) {
    failRead(
      r,
      "trailing_bytes",
      `${r.context} has ${left} trailing byte${left === 1 ? "" : "s"} after the last field at offset ${r.pos}`,
    );
  }
}

// ---------------------------------------------------------------- writing

export interface Writer {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos: number;
}

export function createWriter(capacity: number): Writer {
  const buf = new Uint8Array(capacity);
  return { buf, view: new DataView(buf.buffer), pos: 0 };
}

function room(w: Writer, n: number): void {
  if (w.pos + n > w.buf.length) {
    throw new Error(`frame encoding needs ${w.pos + n} bytes but the buffer holds ${w.buf.length}`);
  }
}

function checkUint(v: number, max: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new Error(`${field} must be an integer in 0..${max}, got ${String(v)}`);
  }
}

export function writeU8(w: Writer, v: number, field: string): void {
  checkUint(v, 0xff, field);
  room(w, 1);
  w.buf[w.pos++] = v;
}

export function writeU16(w: Writer, v: number, field: string): void {
  checkUint(v, 0xffff, field);
  room(w, 2);
  w.view.setUint16(w.pos, v);
  w.pos += 2;
}

export function writeU32(w: Writer, v: number, field: string): void {
  checkUint(v, 0xffffffff, field);
  room(w, 4);
  w.view.setUint32(w.pos, v);
  w.pos += 4;
}

/**
 * u8 length + UTF-8. Encodes straight into the buffer (no temporary array).
 * Lone surrogates become U+FFFD, as TextEncoder always does.
 */
export function writeStr(w: Writer, s: string, field: string): void {
  room(w, 1);
  const start = w.pos + 1;
  const limit = Math.min(MAX_STRING_BYTES, w.buf.length - start);
  const { read, written } = utf8Encoder.encodeInto(s, w.buf.subarray(start, start + limit));
  if (read < s.length) {
    if (limit < MAX_STRING_BYTES) room(w, 1 + MAX_STRING_BYTES);
    throw new Error(`${field} is longer than ${MAX_STRING_BYTES} UTF-8 bytes`);
  }
  w.buf[w.pos] = written;
  w.pos = start + written;
}

export function writeAddress(w: Writer, a: Address, field: string): void {
  checkUint(a.port, 0xffff, `${field} port`);
  const bytes = parseHost(a.host);
  if (bytes === undefined) {
    throw new Error(`${field} host ${JSON.stringify(a.host)} is not an IPv4 or IPv6 address`);
  }
  // 16 bytes means a real IPv6 address; mapped IPv4 was already reduced to 4.
  writeU8(w, bytes.length === 4 ? 4 : 6, `${field} family`);
  room(w, bytes.length);
  w.buf.set(bytes, w.pos);
  w.pos += bytes.length;
  writeU16(w, a.port, `${field} port`);
}

// ---------------------------------------------------------------- IP text

function formatIPv4(b: Uint8Array, p: number): string {
  return `${b[p]}.${b[p + 1]}.${b[p + 2]}.${b[p + 3]}`;
}

function isIPv4Mapped(b: Uint8Array, p: number): boolean {
  for (let i = 0; i < 10; i++) if (b[p + i] !== 0) return false;
  return b[p + 10] === 0xff && b[p + 11] === 0xff;
}

/** RFC 5952: lowercase hex, no leading zeros, longest (first) zero run of 2+ groups as "::". */
function formatIPv6(b: Uint8Array, p: number): string {
  let bestStart = -1;
  let bestLen = 1; // runs must beat 1 group to be compressed
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    const zero = b[p + 2 * i] === 0 && b[p + 2 * i + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = i;
      const len = i - runStart + 1;
      if (len > bestLen) {
        bestStart = runStart;
        bestLen = len;
      }
    } else {
      runStart = -1;
    }
  }
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += "::";
      i += bestLen - 1;
      continue;
    }
    if (s.length > 0 && s.charCodeAt(s.length - 1) !== 0x3a /* ':' */) s += ":";
    s += ((b[p + 2 * i]! << 8) | b[p + 2 * i + 1]!).toString(16);
  }
  return s;
}

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/** 4 bytes for IPv4 (including IPv4-mapped IPv6 text), 16 for IPv6, else undefined. */
export function parseHost(host: string): Uint8Array | undefined {
  if (!host.includes(":")) return parseIPv4(host);
  const v6 = parseIPv6(host);
  if (v6 !== undefined && isIPv4Mapped(v6, 0)) return v6.subarray(12);
  return v6;
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    // Leading zeros are rejected: some parsers read them as octal.
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

// Accepts any RFC 4291 text form (upper or lower case, "::", dotted IPv4
// tail). Zone ids ("%eth0") have no wire representation and are rejected.
function parseIPv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0]!, halves.length === 1);
  if (head === undefined) return undefined;
  let groups: number[];
  if (halves.length === 1) {
    if (head.length !== 8) return undefined;
    groups = head;
  } else {
    const tail = parseGroups(halves[1]!, true);
    if (tail === undefined) return undefined;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

// Colon-separated hex groups; the last one may be dotted IPv4 when
// `ipv4TailAllowed` (it is only allowed at the very end of the address).
function parseGroups(text: string, ipv4TailAllowed: boolean): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (ipv4TailAllowed && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (v4 === undefined) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else {
      if (!HEX_GROUP.test(part)) return undefined;
      groups.push(parseInt(part, 16));
    }
  }
  return groups.length > 8 ? undefined : groups;
}
