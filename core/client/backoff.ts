/**
 * Exponential backoff with full jitter: the n-th wait is uniform in
 * [0, min(cap, base * 2^n)], so a fleet that lost its server does not
 * come back in lockstep.
 */
export interface BackoffSettings {
  baseMs: number;
  capMs: number;
  /** 0 means retry forever. */
  maxAttempts: number;
}

export interface Backoff {
  readonly attempts: number;
  /** The next delay, or null when the attempts are used up. */
  next(): number | null;
  reset(): void;
}

export function createBackoff(settings: BackoffSettings, random: () => number = Math.random): Backoff {
  let attempts = 0;
  return {
    get attempts() {
      return attempts;
    },
    next() {
      if (settings.maxAttempts > 0 && attempts >= settings.maxAttempts) return null;
      const ceiling = Math.min(settings.capMs, settings.baseMs * 2 ** Math.min(attempts, 30));
      attempts++;
      return Math.floor(random() * ceiling);
    },
    reset() {
      attempts = 0;
    },
  };
}

/** Sleeps for `ms`, ending early (resolving false) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
