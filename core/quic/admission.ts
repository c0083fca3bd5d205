/**
 * Whether a server takes a packet that belongs to no connection: version
 * negotiation, address validation with retry tokens (once handshakes pile
 * up), the bound on handshakes in progress, and the bound on unproven
 * connections per address. Stateless answers (version negotiation, retry,
 * stateless reset) share one rate cap, so junk cannot turn the server into a
 * reflector.
 */
import { type LongHeader, MAX_CID } from "./long-header.ts";
import { quiche } from "./native.ts";
import { buildReset, resetToken } from "./reset.ts";
import type { RetryTokenCodec } from "./tokens.ts";

/** Our connection IDs are always this long, so short-header packets can be routed. */
export const CID_LEN = 16;
/** RFC 9000 §7.2: a client's first destination connection ID is 8 to 20 bytes. */
const MIN_INITIAL_DCID = 8;
/** Version negotiations and stateless resets sent per second at most. */
const MAX_STATELESS_PER_SECOND = 100;
/**
 * Retries sent per second at most. A retry is a fifth of the 1200-byte
 * Initial that asks for it, so it cannot amplify; its cap bounds only our own
 * work. It is the rate at which new clients get in: it must let a whole fleet
 * back after a restart (10k agents in about a second), where sharing the
 * budget above held a server to 100 new connections a second.
 */
const MAX_RETRIES_PER_SECOND = 10_000;
/**
 * New clients taken without a retry per second at most. The bound on
 * handshakes in progress does not see Initials that cannot be decrypted (each
 * connection is gone at once), yet every one costs a quiche connection: past
 * this rate a client proves its address first, which costs us a stateless
 * packet instead.
 */
const MAX_UNVALIDATED_PER_SECOND = 500;

/** What to do with a packet for no known connection. */
export type Admission =
  | { kind: "drop"; reason: string }
  /** Answer with this packet (version negotiation or retry); nothing is kept. */
  | { kind: "reply"; packet: Uint8Array; reason: string }
  /**
   * Create the connection: our CID, and the client's original DCID after a
   * retry. Without a retry, `clientDcid` is the ID the client's Initials carry
   * until our answer reaches it: a repeated first Initial must find this
   * connection, not make another.
   */
  | { kind: "accept"; scid: Uint8Array; odcid: Uint8Array | null; clientDcid?: Uint8Array };

export interface AdmissionSettings {
  tokens: RetryTokenCodec | null;
  /**
   * With tokens: handshakes in progress from which a new client must prove
   * its address with a retry first; below, it connects a round trip sooner
   * (quiche holds an unproven address to 3x what it sent). 0: always retry.
   */
  retryAbove: number;
  maxHandshakes: number;
  resetKey?: Uint8Array;
}

/** Answers allowed per one-second window. */
interface Budget {
  readonly perSecond: number;
  windowStart: number;
  used: number;
}

/** The state admission keeps: the stateless-answer budgets and a scratch buffer. */
export interface AdmissionState {
  stateless: Budget;
  retries: Budget;
  unvalidated: Budget;
  scratch: Uint8Array;
}

export function createAdmissionState(): AdmissionState {
  return {
    stateless: { perSecond: MAX_STATELESS_PER_SECOND, windowStart: 0, used: 0 },
    retries: { perSecond: MAX_RETRIES_PER_SECOND, windowStart: 0, used: 0 },
    unvalidated: { perSecond: MAX_UNVALIDATED_PER_SECOND, windowStart: 0, used: 0 },
    scratch: new Uint8Array(1500),
  };
}

/** One answer, if the budget's current second has room. */
function spend(budget: Budget): boolean {
  const now = Date.now();
  if (now - budget.windowStart >= 1_000) {
    budget.windowStart = now;
    budget.used = 0;
  }
  return ++budget.used <= budget.perSecond;
}

export function randomCid(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(CID_LEN));
}

/**
 * Decides about a long-header packet for no connection. `handshaking` is the
 * number of handshakes in progress now.
 */
export function admit(
  a: AdmissionState,
  settings: AdmissionSettings,
  data: Uint8Array,
  header: LongHeader,
  from: { host: string; port: number },
  handshaking: number,
): Admission {
  if (!quiche.versionIsSupported(header.version)) {
    // RFC 9000 §5.2.2: a datagram too small to start a connection gets no
    // answer, or a 7-byte packet would buy an 11-byte one.
    if (data.length < quiche.MIN_CLIENT_INITIAL_LEN) return { kind: "drop", reason: "short_unknown_version" };
    if (!spend(a.stateless)) return { kind: "drop", reason: "stateless_limit" };
    const n = quiche.negotiateVersion(header.scid, header.dcid, a.scratch);
    return { kind: "reply", packet: a.scratch.subarray(0, n), reason: "version_negotiation" };
  }
  if (header.ty !== quiche.Type.Initial) return { kind: "drop", reason: "unknown_connection" };
  // Anti-amplification: a client Initial must fill a minimum-size datagram.
  if (data.length < quiche.MIN_CLIENT_INITIAL_LEN) return { kind: "drop", reason: "short_initial" };
  if (header.dcid.length < MIN_INITIAL_DCID || header.dcid.length > MAX_CID) return { kind: "drop", reason: "bad_cid" };
  if (handshaking >= settings.maxHandshakes) return { kind: "drop", reason: "handshake_limit" };

  const tokens = settings.tokens;
  const token = header.token;
  const tokenless = !token || token.length === 0;
  // Below the load that calls for retries, a new client is taken at once: a
  // spoofed source costs no more than a handshake slot, and a crowd of them
  // (or a stream of junk, past MAX_UNVALIDATED_PER_SECOND) turns retries on.
  if (tokens === null || (tokenless && handshaking < settings.retryAbove && spend(a.unvalidated))) {
    return { kind: "accept", scid: randomCid(), odcid: null, clientDcid: header.dcid.slice() };
  }
  if (tokenless) {
    if (!spend(a.retries)) return { kind: "drop", reason: "retry_limit" };
    const minted = tokens.mint(from.host, from.port, header.dcid);
    const n = quiche.retry(header.scid, header.dcid, randomCid(), minted, header.version, a.scratch);
    return { kind: "reply", packet: a.scratch.subarray(0, n), reason: "retry" };
  }
  const odcid = tokens.verify(token!, from.host, from.port);
  if (odcid === null) return { kind: "drop", reason: "invalid_token" };
  // After a retry the client already uses the CID we chose in the retry packet.
  if (header.dcid.length !== CID_LEN) return { kind: "drop", reason: "bad_cid" };
  return { kind: "accept", scid: header.dcid.slice(), odcid };
}

/**
 * A stateless reset for a short-header packet of a connection we do not
 * know (we restarted), so its peer learns at once instead of timing out.
 */
export function statelessReset(a: AdmissionState, resetKey: Uint8Array, data: Uint8Array): Uint8Array | null {
  if (!spend(a.stateless)) return null;
  return buildReset(resetToken(resetKey, data.subarray(1, 1 + CID_LEN)), data.length);
}

/**
 * Unproven connections per source address, oldest first: when an address is
 * full, the oldest is the one to give up (see EndpointOptions).
 */
export interface UnprovenByAddress<T> {
  add(host: string, item: T): T | undefined;
  remove(host: string, item: T): void;
  count(host: string): number;
}

export function createUnprovenByAddress<T>(limit: number): UnprovenByAddress<T> {
  const byHost = new Map<string, T[]>();
  return {
    /** Adds `item`; returns the oldest item to evict when the address was full. */
    add(host, item) {
      let list = byHost.get(host);
      if (list === undefined) byHost.set(host, list = []);
      list.push(item);
      return list.length > limit ? list[0] : undefined;
    },
    remove(host, item) {
      const list = byHost.get(host);
      if (list === undefined) return;
      const i = list.indexOf(item);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) byHost.delete(host);
    },
    count(host) {
      return byHost.get(host)?.length ?? 0;
    },
  };
}
