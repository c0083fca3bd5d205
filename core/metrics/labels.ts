// Label vocabularies shared by more than one component's metric set.

/** Registration / open outcomes: `reason` is "ok" for an ack, else the nack code. */
export type ResultLabels = { result: "ack" | "nack"; reason: string };

/**
 * Numeric encoding of a client's link to a server, for the
 * `*_connection_state{server}` gauges of connector and agent.
 */
export const CONNECTION_STATE = {
  disconnected: 0,
  connecting: 1,
  connected: 2,
  draining: 3,
} as const;

export type ConnectionState = keyof typeof CONNECTION_STATE;
