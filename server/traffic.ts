/**
 * Datagram and byte rates for the server's `/status`: the relay counts what
 * each service carries (relay.ts `ServiceTraffic`), a timer samples those
 * counters once a second, and the status document gets rates averaged over
 * the last 10 s, in total and per service. Additive to server/status.ts.
 */
import { type Counters, createRateWindow, roundRate } from "../core/rates.ts";
import type { Relay, ServiceTraffic } from "./relay.ts";
import type { ServerStatus, ServiceStatus } from "./status.ts";

export interface TrafficRates {
  /** Tunnelled datagrams per second, agent → connector and connector → agent. */
  datagramsPerSecond: { toConnector: number; toAgent: number };
  /** Their UDP payload bytes per second. */
  bytesPerSecond: { toConnector: number; toAgent: number };
}

export type ServiceStatusWithRates = ServiceStatus & { rates: TrafficRates };
export type ServerStatusWithRates = Omit<ServerStatus, "services"> & {
  services: ServiceStatusWithRates[];
  rates: TrafficRates & { windowSeconds: number };
};

const TOTAL = "\u0000total";

export interface TrafficSampler {
  /** Takes one sample (called every second by the server). */
  sample(now?: number): void;
  /** The status document with rates added. */
  addRates(status: ServerStatus): ServerStatusWithRates;
}

export function createTrafficSampler<C>(relay: Relay<C>, windowMs = 10_000): TrafficSampler {
  const window = createRateWindow(windowMs);
  const values = (t: ServiceTraffic) =>
    [t.datagramsToConnector, t.datagramsToAgent, t.bytesToConnector, t.bytesToAgent] as const;
  const ratesOf = (name: string): TrafficRates => {
    const [dc = 0, da = 0, bc = 0, ba = 0] = window.rate(name);
    return {
      datagramsPerSecond: { toConnector: roundRate(dc), toAgent: roundRate(da) },
      bytesPerSecond: { toConnector: roundRate(bc), toAgent: roundRate(ba) },
    };
  };
  return {
    sample(now = Date.now()) {
      const counters: Counters = new Map();
      const total = [0, 0, 0, 0];
      for (const service of relay.services.values()) {
        const v = values(service.traffic);
        counters.set(service.name, v);
        for (let i = 0; i < 4; i++) total[i]! += v[i]!;
      }
      counters.set(TOTAL, total);
      window.sample(counters, now);
    },
    addRates(status) {
      return {
        ...status,
        services: status.services.map((s) => ({ ...s, rates: ratesOf(s.name) })),
        rates: { ...ratesOf(TOTAL), windowSeconds: Math.round(window.seconds()) },
      };
    },
  };
}
