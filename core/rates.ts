/**
 * Per-second rates for `/status`, from cumulative counters sampled once a
 * second over a sliding window (10 s by default): what an operator reads as
 * "how busy is it now", without Prometheus. Plain data, no I/O; the owner
 * calls `sample` from a timer.
 */

/** A snapshot: counter name → cumulative value (several values per name, e.g. per direction). */
export type Counters = Map<string, readonly number[]>;

export interface RateWindow {
  /** Records the counters as of `now` (ms). */
  sample(counters: Counters, now?: number): void;
  /** Per-second rates of `name` over the window, one per value; zeros until two samples exist. */
  rate(name: string): number[];
  /** Seconds the rates are averaged over (less while the window fills). */
  seconds(): number;
}

export function createRateWindow(windowMs = 10_000): RateWindow {
  const samples: { at: number; counters: Counters }[] = [];
  return {
    sample(counters, now = Date.now()) {
      samples.push({ at: now, counters });
      // Keep one sample at or beyond the window's start, so the window stays full.
      while (samples.length > 2 && now - samples[1]!.at >= windowMs) samples.shift();
    },
    rate(name) {
      const last = samples.at(-1);
      if (!last) return [];
      const now = last.counters.get(name);
      if (!now) return [];
      // The oldest sample that knows this counter (a service may be newer than the window).
      const first = samples.find((s) => s.counters.has(name))!;
      const dt = (last.at - first.at) / 1000;
      const then = first.counters.get(name)!;
      return now.map((v, i) => (dt > 0 ? Math.max(0, v - (then[i] ?? 0)) / dt : 0));
    },
    seconds() {
      return samples.length < 2 ? 0 : (samples.at(-1)!.at - samples[0]!.at) / 1000;
    },
  };
}

/** Rounds a rate for JSON: whole numbers above 10, one decimal below. */
export function roundRate(v: number): number {
  return v >= 10 ? Math.round(v) : Math.round(v * 10) / 10;
}

export interface SampledRates {
  /** Per-second rates of the values `read` returns, over the window. */
  rates(): number[];
  seconds(): number;
  stop(): void;
}

/** Samples `read` (cumulative counters) every `everyMs` on a timer that never keeps a program alive. */
export function sampleRates(read: () => readonly number[], windowMs = 10_000, everyMs = 1_000): SampledRates {
  const window = createRateWindow(windowMs);
  const take = () => window.sample(new Map([["v", read()]]));
  take();
  const timer = setInterval(take, everyMs);
  (timer as { unref?: () => void }).unref?.();
  return { rates: () => window.rate("v"), seconds: () => window.seconds(), stop: () => clearInterval(timer) };
}
