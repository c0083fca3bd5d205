// Structured logging: one line per event, as JSON (for collectors) or as
// `key=value` text (for people). Lines go to stderr so stdout stays free for
// program output.
import process from "node:process";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

export interface LoggerOptions {
  component: string;
  format: LogFormat;
  level: LogLevel;
  /** One complete line, without the trailing newline. */
  write?: (line: string) => void;
}

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. the peer address). */
  child(fields: LogFields): Logger;
}

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(RANK, s);
}

const writeStderr = (line: string): void => {
  process.stderr.write(line + "\n");
};

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? writeStderr;
  const min = RANK[opts.level];
  const render = opts.format === "json" ? renderJson : renderText;

  const make = (fixed: LogFields): Logger => {
    const emit = (level: LogLevel) => (event: string, fields?: LogFields): void => {
      if (RANK[level] < min) return;
      const all = fields === undefined ? fixed : { ...fixed, ...fields };
      // Logging must never take the program down.
      try {
        write(render(new Date().toISOString(), level, opts.component, event, all));
      } catch {
        // nowhere left to report it
      }
    };
    return {
      debug: emit("debug"),
      info: emit("info"),
      warn: emit("warn"),
      error: emit("error"),
      child: (more) => make({ ...fixed, ...more }),
    };
  };
  return make({});
}

const RESERVED = new Set(["ts", "level", "component", "event"]);

function renderJson(ts: string, level: LogLevel, component: string, event: string, fields: LogFields): string {
  const out: LogFields = { ts, level, component, event };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    // A field may not overwrite the envelope; keep it under another name.
    out[RESERVED.has(k) ? `_${k}` : k] = v;
  }
  try {
    return JSON.stringify(out, jsonValue);
  } catch {
    // e.g. a circular object: degrade that field rather than lose the line
    for (const [k, v] of Object.entries(out)) out[k] = typeof v === "object" && v !== null ? String(v) : v;
    return JSON.stringify(out, jsonValue);
  }
}

function jsonValue(_key: string, v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (typeof v === "bigint") return v.toString();
  return v;
}

function renderText(ts: string, level: LogLevel, component: string, event: string, fields: LogFields): string {
  let line = `${ts} ${level.toUpperCase().padEnd(5)} ${component} ${event}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    line += ` ${k}=${textValue(v)}`;
  }
  return line;
}

function textValue(v: unknown): string {
  if (typeof v === "string") return quote(v, NEEDS_QUOTES);
  if (v instanceof Error) return quote(v.message, NEEDS_QUOTES);
  if (v === null || typeof v !== "object") return String(v);
  let json: string;
  try {
    json = JSON.stringify(v, jsonValue) ?? String(v);
  } catch {
    json = String(v);
  }
  // Objects stay readable JSON; quoted only if a space would split them.
  return quote(json, /\s/);
}

// Quote strings that would otherwise be ambiguous to split on spaces / '='.
const NEEDS_QUOTES = /[\s"=\\]|^$|[\u0000-\u001f\u007f]/;

function quote(s: string, needs: RegExp): string {
  return needs.test(s) ? JSON.stringify(s) : s;
}
