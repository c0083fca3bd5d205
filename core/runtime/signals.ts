/**
 * Graceful shutdown on SIGTERM/SIGINT: the first signal starts `shutdown` and
 * exits 0 when it finishes; a second signal exits at once.
 */
import type { Logger } from "../log.ts";

export function onShutdownSignals(shutdown: (signal: string) => Promise<void>, log: Logger): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn("forced_exit", { signal });
      process.exit(130);
    }
    stopping = true;
    log.info("shutdown_requested", { signal });
    shutdown(signal).then(
      () => process.exit(0),
      (error) => {
        log.error("shutdown_failed", { error });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}

/**
 * SIGHUP asks a program to re-read its certificate files. Installed before
 * start-up so an early SIGHUP is not fatal (its default action); one that
 * arrives while starting is applied once `ready` hands over the reload.
 */
export function onReloadSignal(): { ready(reload: () => void): void } {
  let reload: (() => void) | null = null;
  let pending = false;
  if (process.platform !== "win32") {
    process.on("SIGHUP", () => {
      if (reload) reload();
      else pending = true;
    });
  }
  return {
    ready(fn) {
      reload = fn;
      if (pending) fn();
    },
  };
}
