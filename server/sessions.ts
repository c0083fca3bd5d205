/**
 * A connection's life on the server: a session when the handshake completes
 * (HELLO must follow in time), everything the peer owned released when it
 * closes, and a handshake that never completed counted by why.
 */
import { CloseCode, createControlReader, versionOfAlpn } from "../core/frame/mod.ts";
import { formatAddress } from "../core/net/address.ts";
import type { CloseInfo } from "../core/quic/types.ts";
import { classifyHandshakeFailure, refusalHint } from "./refusals.ts";
import { removePeer } from "./relay.ts";
import { notifyAgents, protocolError } from "./control.ts";
import { type ServerConn, type ServerState, type Session, updateGauges } from "./state.ts";

/** The handshake completed: the connection gets a session, and HELLO a deadline. */
export function openSession(s: ServerState, conn: ServerConn): void {
  // quiche refuses a client that offers none of our ALPNs; one that offers none at all is closed here.
  const version = versionOfAlpn(conn.raw.applicationProto());
  if (version === undefined) {
    s.metrics.protocolErrors.child({ kind: "no_alpn" }).inc();
    s.log.warn("protocol_error", {
      peer: formatAddress(conn.remote),
      kind: "no_alpn",
      error: "no ztna protocol agreed by ALPN",
    });
    conn.close(CloseCode.PROTOCOL_ERROR, "no ztna protocol agreed by ALPN");
    return;
  }
  const session: Session = {
    conn,
    version,
    peer: null,
    reader: createControlReader(s.limits.controlMessage, version),
    helloTimer: null,
    registrations: 0,
    facts: { address: formatAddress(conn.remote), identity: null, version: null, registeredAt: new Map() },
  };
  conn.context = session;
  session.helloTimer = setTimeout(() => {
    session.helloTimer = null;
    if (session.peer === null) protocolError(s, session, "hello_timeout", "no hello in time");
  }, s.limits.helloTimeoutMs);
  s.metrics.handshakeDuration.observe((Date.now() - conn.createdAt) / 1000);
}

/** The connection is over: its streams, flows, channels and registrations go with it. */
export function closeSession(s: ServerState, conn: ServerConn, info: CloseInfo): void {
  if (!conn.established) return handshakeFailed(s, conn, info);
  s.streams.onClosed(conn);
  const session = conn.context;
  if (!session) return;
  if (session.helloTimer) clearTimeout(session.helloTimer);
  const peer = session.peer;
  if (!peer) return;
  s.peers.delete(peer);
  s.metrics.connectionsActive.child({ role: peer.role }).dec();
  const wentDown = removePeer(s.relay, peer, Date.now());
  for (const service of wentDown) notifyAgents(s, service, false);
  s.log.info("peer_closed", {
    peer: formatAddress(conn.remote),
    role: peer.role,
    reason: info.reason,
    timed_out: info.timedOut,
  });
  updateGauges(s);
}

/** A handshake that never completed: counted by reason, logged once per client address and reason a minute. */
function handshakeFailed(s: ServerState, conn: ServerConn, info: CloseInfo): void {
  const failure = classifyHandshakeFailure(info);
  s.metrics.handshakeFailures.child({ reason: failure.reason }).inc();
  s.refusals.log("warn", "handshake_failed", `${failure.reason}|${conn.remote.host}`, {
    peer: formatAddress(conn.remote),
    reason: failure.reason,
    alert: failure.alert,
    refused_by: failure.by,
    hint: refusalHint(failure),
  });
}
