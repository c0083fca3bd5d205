/**
 * Loads quiche's native binding in exactly one place.
 *
 * The `@matrixai/quic` package resolves its binding with a dynamic loader that
 * fails inside `bun build --compile` binaries; a static `require` of the
 * platform package is embedded by the compiler and works everywhere.
 */
import { createRequire } from "node:module";
import type { Quiche } from "@matrixai/quic/native/quiche.js";

export type {
  Config,
  Connection,
  ConnectionError,
  Header,
  RecvInfo,
  SendInfo,
  Stats,
} from "@matrixai/quic/native/types.js";

function load(): Quiche {
  const key = `${process.platform}-${process.arch}`;
  // A string literal, so `bun build --compile` sees and embeds the binding.
  if (key === "linux-x64" && typeof require === "function") {
    return require("@matrixai/quic-linux-x64/node.napi.node");
  }
  // Other platforms, and runtimes without a global require (Deno), resolve at run time.
  const name = key.startsWith("darwin") ? "darwin-universal" : key;
  try {
    return createRequire(import.meta.url)(`@matrixai/quic-${name}/node.napi.node`);
  } catch (cause) {
    throw new Error(`ztna: no native QUIC binding for ${key} (published for linux-x64, darwin and win32-x64)`, {
      cause,
    });
  }
}

export const quiche: Quiche = load();
