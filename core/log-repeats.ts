/**
 * Repeated events logged once, then counted: a client refused for a service
 * asks again every second, and a line per refusal would bury everything else
 * in the log. The first occurrence of a key is logged at once; later ones are
 * counted and reported as one line per window (a minute by default) with
 * `repeated: N`, and a key that stays quiet for a whole window is forgotten,
 * so its next occurrence is logged at once again.
 */
import type { LogFields, Logger, LogLevel } from "./log.ts";

export interface RepeatLog {
  /** Logs `event` for `key` now, or counts it if `key` was logged within the current window. */
  log(level: LogLevel, event: string, key: string, fields: LogFields): void;
  /** Reports every pending count now (the timer does this once per window). */
  flush(): void;
  /** Reports pending counts and stops the timer. */
  close(): void;
}

export interface RepeatLogOptions {
  /** Default 60 s. */
  windowMs?: number;
  /** Keys remembered at once; beyond it, new keys are logged every time (so nothing is lost, only not merged). */
  maxKeys?: number;
}

interface Pending {
  level: LogLevel;
  event: string;
  fields: LogFields;
  count: number;
}

export function createRepeatLog(log: Logger, options: RepeatLogOptions = {}): RepeatLog {
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 4096;
  const seen = new Map<string, Pending>();
  let timer: ReturnType<typeof setInterval> | null = null;

  const flush = () => {
    for (const [key, p] of seen) {
      if (p.count === 0) {
        // Quiet for a whole window: forget it, so the next one is logged at once.
        seen.delete(key);
        continue;
      }
      log[p.level](p.event, { ...p.fields, repeated: p.count, window_s: Math.round(windowMs / 1000) });
      p.count = 0;
    }
    if (seen.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };

  return {
    log(level, event, key, fields) {
      const full = `${event}\u0000${key}`;
      const pending = seen.get(full);
      if (pending) {
        pending.count++;
        pending.fields = fields;
        return;
      }
      log[level](event, fields);
      if (seen.size >= maxKeys) return;
      seen.set(full, { level, event, fields, count: 0 });
      if (timer === null) {
        timer = setInterval(flush, windowMs);
        // A pending count must not keep a finished program alive.
        (timer as { unref?: () => void }).unref?.();
      }
    },
    flush,
    close() {
      flush();
      if (timer !== null) clearInterval(timer);
      timer = null;
      seen.clear();
    },
  };
}
