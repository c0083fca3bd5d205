// Generic option loader shared by server, connector and agent.
//
// Each program declares its options as data (a Spec). Values are resolved with
// precedence CLI flags > ZTNA_* environment variables > JSON file (--config) >
// defaults. Any problem becomes a single ConfigError line naming the field, so
// operators see exactly which knob is wrong and where it can be set.
//
// Only web-standard APIs are used here, plus node:fs readFileSync as the
// default file reader (available in Bun, Node and Deno); callers may inject
// their own reader and process I/O.
import { readFileSync } from "node:fs";

// ---------------------------------------------------------------------------
// Errors

/** A configuration problem; `field` is the option name (or the unknown flag/key). */
export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, detail: string) {
    super(`invalid config: ${detail}`);
    this.name = "ConfigError";
    this.field = field;
  }
}

/** Thrown by load() when --help/-h is present; loadOrExit prints `usage`. */
export class HelpRequested extends Error {
  readonly usage: string;
  constructor(usage: string) {
    super("help requested");
    this.name = "HelpRequested";
    this.usage = usage;
  }
}

// ---------------------------------------------------------------------------
// Naming: one camelCase name per option, from which flag/env/JSON names derive.

/** `flowIdle` -> `flow-idle` */
export function flagName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `flowIdle` -> `ZTNA_FLOW_IDLE` */
export function envName(name: string): string {
  return `ZTNA_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** `flowIdle` -> `--flow-idle (ZTNA_FLOW_IDLE)`, the label used in every error. */
export function fieldLabel(name: string): string {
  return `--${flagName(name)} (${envName(name)})`;
}

/** Build the ConfigError for a bad value of option `name`. */
export function optionError(name: string, detail: string, where?: string): ConfigError {
  const suffix = where === undefined ? "" : ` in ${where}`;
  return new ConfigError(name, `${fieldLabel(name)}${suffix}: ${detail}`);
}

function got(raw: unknown): string {
  return `got ${JSON.stringify(raw)}`;
}

// ---------------------------------------------------------------------------
// Value kinds

/**
 * How to turn raw input into a typed value. `parse` handles flag/env strings,
 * `fromJson` values out of the config file. Both throw Error with a message
 * like `expected HOST:PORT, got "abc"`; the loader adds the field label.
 */
export interface Kind<T> {
  /** Placeholder shown in help, e.g. HOST:PORT. */
  readonly metavar: string;
  readonly parse: (raw: string) => T;
  readonly fromJson: (value: unknown) => T;
  /** Boolean flags may appear without a value. */
  readonly flag?: boolean;
  /** Occurrences accumulate (repeatable flags, comma lists). */
  readonly list?: boolean;
  /** Value used when nothing is given and there is no explicit default. */
  readonly implicit?: T;
  /** Accepted range, for help (e.g. `1..4096`). */
  readonly range?: string;
}

/** Default JSON handling: strings, numbers and booleans go through parse(). */
function jsonViaParse<T>(metavar: string, parse: (raw: string) => T): (value: unknown) => T {
  return (value) => {
    if (typeof value === "string") return parse(value);
    if (typeof value === "number" || typeof value === "boolean") return parse(String(value));
    throw new Error(`expected ${metavar}, ${got(value)}`);
  };
}

/** A custom kind from a string parser (which throws Error on bad input). */
export function custom<T>(metavar: string, parse: (raw: string) => T): Kind<T> {
  return { metavar, parse, fromJson: jsonViaParse(metavar, parse) };
}

export function string(metavar = "STRING"): Kind<string> {
  return custom(metavar, (raw) => {
    if (raw === "") throw new Error(`expected a non-empty ${metavar}, ${got(raw)}`);
    return raw;
  });
}

export function integer(opts: { min?: number; max?: number } = {}): Kind<number> {
  const { min, max } = opts;
  const range = min !== undefined && max !== undefined
    ? ` in ${min}..${max}`
    : min !== undefined
    ? ` >= ${min}`
    : max !== undefined
    ? ` <= ${max}`
    : "";
  const kind = custom("N", (raw) => {
    const text = raw.trim();
    const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || (min !== undefined && n < min) || (max !== undefined && n > max)) {
      throw new Error(`expected an integer${range}, ${got(raw)}`);
    }
    return n;
  });
  return range === "" ? kind : { ...kind, range: range.trim().replace(/^in /, "") };
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

export function boolean(): Kind<boolean> & { implicit: boolean } {
  const parse = (raw: string): boolean => {
    const text = raw.trim().toLowerCase();
    if (TRUE_WORDS.has(text)) return true;
    if (FALSE_WORDS.has(text)) return false;
    throw new Error(`expected true or false, ${got(raw)}`);
  };
  return { metavar: "", parse, fromJson: jsonViaParse("true or false", parse), flag: true, implicit: false };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse `10`, `10s`, `500ms`, `2m`, `1.5h` (bare numbers are seconds) into milliseconds. */
export function parseDuration(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new Error(`expected a duration like 10s, 500ms or 2m, ${got(raw)}`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? "s"]!);
}

/**
 * The longest duration any option takes: timers hold at most 2^31-1 ms
 * (about 24.8 days), and a longer one would fire at once instead.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** `3600000` -> `1h`, `1500` -> `1500ms`: the largest unit that divides evenly. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Durations come back as milliseconds; `min` and `max` are in milliseconds
 * too. Every duration is capped at MAX_DURATION_MS.
 */
export function duration(opts: { min?: number; max?: number } = {}): Kind<number> {
  const max = Math.min(opts.max ?? MAX_DURATION_MS, MAX_DURATION_MS);
  const kind = custom("DURATION", (raw) => {
    const ms = parseDuration(raw);
    if (opts.min !== undefined && ms < opts.min) {
      throw new Error(`expected a duration of at least ${opts.min}ms, ${got(raw)}`);
    }
    if (ms > max) throw new Error(`expected a duration of at most ${formatDuration(max)}, ${got(raw)}`);
    return ms;
  });
  return { ...kind, range: `${formatDuration(opts.min ?? 0)}..${formatDuration(max)}` };
}

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parse `host:port` or `[v6addr]:port`. The host comes back without brackets.
 * Port 0 means "let the OS choose" and is refused when `allowPortZero` is false.
 */
export function parseHostPort(raw: string, allowPortZero = true): HostPort {
  const text = raw.trim();
  const bad = new Error(`expected HOST:PORT, ${got(raw)}`);
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const m = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d+)$/.exec(text);
    if (!m || !m[1]!.includes(":")) throw bad;
    host = m[1]!;
    portText = m[2]!;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0) throw bad;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    // Bare IPv6 is ambiguous (which colon starts the port?), so brackets are required.
    if (host.includes(":")) throw new Error(`expected HOST:PORT (bracket IPv6 as [::1]:4433), ${got(raw)}`);
    if (!/^[A-Za-z0-9._-]+$/.test(host)) throw bad;
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad;
  const port = Number(portText);
  if (port > 65535) throw new Error(`expected HOST:PORT with port 0..65535, ${got(raw)}`);
  if (port === 0 && !allowPortZero) throw new Error(`expected HOST:PORT with a non-zero port, ${got(raw)}`);
  return { host, port };
}

export function hostPort(opts: { allowPortZero?: boolean } = {}): Kind<HostPort> {
  return custom("HOST:PORT", (raw) => parseHostPort(raw, opts.allowPortZero ?? true));
}

/** An ops/metrics listener: HOST:PORT, or `off` (-> null) to disable it. */
export function hostPortOrOff(): Kind<HostPort | null> {
  return custom("HOST:PORT|off", (raw) => {
    if (raw.trim().toLowerCase() === "off") return null;
    try {
      return parseHostPort(raw);
    } catch {
      throw new Error(`expected HOST:PORT or off, ${got(raw)}`);
    }
  });
}

export function oneOf<const V extends readonly string[]>(values: V): Kind<V[number]> {
  const allowed = values.join("|");
  return custom(allowed, (raw) => {
    const text = raw.trim();
    if (!values.includes(text)) throw new Error(`expected one of ${allowed}, ${got(raw)}`);
    return text as V[number];
  });
}

/**
 * A list: each flag occurrence and the env value are split on commas,
 * repeated flags accumulate, and the JSON form is an array (or a comma string).
 */
export function list<T>(item: Kind<T>): Kind<T[]> & { implicit: T[] } {
  const parse = (raw: string): T[] =>
    raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")
      .map((s) => item.parse(s));
  const fromJson = (value: unknown): T[] => {
    if (typeof value === "string") return parse(value);
    if (Array.isArray(value)) return value.map((v) => item.fromJson(v));
    throw new Error(`expected an array of ${item.metavar}, ${got(value)}`);
  };
  return { metavar: item.metavar, parse, fromJson, list: true, implicit: [] };
}

// Log vocabulary shared by every program's options.
export const LOG_FORMATS = ["text", "json"] as const;
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

// Service names travel in the protocol and in certificate URIs, so they are
// restricted to a DNS-label-like alphabet and length.
const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isValidServiceName(name: string): boolean {
  const bytes = new TextEncoder().encode(name).length;
  return bytes >= 1 && bytes <= 63 && SERVICE_NAME_RE.test(name);
}

export function serviceName(): Kind<string> {
  return custom("NAME", (raw) => {
    if (!isValidServiceName(raw)) {
      throw new Error(
        `expected a service name (1-63 chars of A-Z a-z 0-9 . _ -, not starting with . _ -), ${got(raw)}`,
      );
    }
    return raw;
  });
}

// ---------------------------------------------------------------------------
// Options and specs

export interface OptionMeta {
  /** One-line description for --help. */
  readonly help: string;
  /** Missing (or empty list) is an error. */
  readonly required?: boolean;
  /** Default as the user would type it; parsed like a flag value. */
  readonly default?: string;
  /** How to show the default in help when it is computed (e.g. TTY-dependent). */
  readonly defaultHelp?: string;
}

/** An option: a kind plus its metadata. `T` is the resolved value type. */
export interface Option<T> extends OptionMeta {
  readonly kind: Kind<unknown>;
  /** Phantom: carries the value type for Values<>. */
  readonly __type?: T;
}

type KindValue<K> = K extends Kind<infer T> ? T : never;

type Resolved<K, O> = O extends { required: true } | { default: string } ? KindValue<K>
  : K extends { implicit: unknown } ? KindValue<K>
  : KindValue<K> | undefined;

/**
 * Declare an option of a given kind. Optional options without a default
 * resolve to `T | undefined`; booleans default to false and lists to [].
 */
export function opt<K extends Kind<any>, const O extends OptionMeta>(kind: K, meta: O): Option<Resolved<K, O>> {
  return { ...meta, kind };
}

export type Options = Record<string, Option<unknown>>;

/** The resolved values of a set of options, plus the config file used (if any). */
export type Values<O extends Options> = { [K in keyof O]: O[K] extends Option<infer T> ? T : never } & {
  config: string | undefined;
};

export interface Spec<O extends Options, R> {
  /** Program name for the usage line. */
  readonly program: string;
  readonly summary: string;
  readonly options: O;
  /** Cross-field checks and shaping of the result; throw ConfigError (see optionError). */
  readonly finish: (values: Values<O>) => R;
  /**
   * Keys of the config file that are not options of this spec are ignored
   * instead of refused: for tools that read another program's config file
   * (`ztna doctor --config /etc/ztna/agent.json`).
   */
  readonly foreignConfig?: boolean;
}

export function defineSpec<O extends Options, R = Values<O>>(spec: {
  program: string;
  summary: string;
  options: O;
  foreignConfig?: boolean;
  finish?: (values: Values<O>) => R;
}): Spec<O, R> {
  if ("config" in spec.options || "help" in spec.options) {
    throw new Error("config and help are built-in options");
  }
  return { ...spec, finish: spec.finish ?? ((v) => v as unknown as R) };
}

// ---------------------------------------------------------------------------
// Cross-field helpers for finish()

/** Both options set or neither (e.g. cert and key). */
export function requireBothOrNeither(values: Record<string, unknown>, a: string, b: string): void {
  const hasA = values[a] !== undefined;
  const hasB = values[b] !== undefined;
  if (hasA && !hasB) throw optionError(a, `--${flagName(b)} must be given too`);
  if (hasB && !hasA) throw optionError(b, `--${flagName(a)} must be given too`);
}

/** At most one of two options (for booleans, true counts as set). */
export function forbidBoth(values: Record<string, unknown>, a: string, b: string): void {
  const set = (v: unknown): boolean => v !== undefined && v !== false;
  if (set(values[a]) && set(values[b])) throw optionError(b, `cannot be combined with --${flagName(a)}`);
}

/**
 * Duration option `a` must be less than `b` (e.g. keepalive < idleTimeout,
 * else the connection times out between pings); `orEqual` relaxes to <=.
 */
export function requireLess(values: Record<string, unknown>, a: string, b: string, orEqual = false): void {
  const va = values[a];
  const vb = values[b];
  if (typeof va !== "number" || typeof vb !== "number") return;
  if (orEqual ? va > vb : va >= vb) {
    const rel = orEqual ? "at most" : "less than";
    throw optionError(a, `must be ${rel} --${flagName(b)} (${va}ms vs ${vb}ms)`);
  }
}

// ---------------------------------------------------------------------------
// Loading

export type ReadFile = (path: string) => string;

const defaultReadFile: ReadFile = (path) => readFileSync(path, "utf8");

const CONFIG_KIND = string("FILE");

function parseWith<T>(name: string, fn: () => T, where?: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw optionError(name, err instanceof Error ? err.message : String(err), where);
  }
}

/** Split argv into raw strings per option name; flags are looked up by kebab name. */
function scanArgv(options: Options, argv: readonly string[]): Map<string, string[]> {
  const byFlag = new Map<string, string>([["config", "config"]]);
  for (const name of Object.keys(options)) byFlag.set(flagName(name), name);
  const raw = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-")) throw new ConfigError(arg, `unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf("=");
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const name = flag.startsWith("--") ? byFlag.get(flag.slice(2)) : undefined;
    if (name === undefined) throw new ConfigError(flag, `unknown flag ${flag} (see --help)`);
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    const kind = name === "config" ? CONFIG_KIND : options[name]!.kind;
    if (value === undefined) {
      if (kind.flag) {
        value = "true";
      } else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith("--")) {
          throw optionError(name, `expected ${kind.metavar} after ${flag}`);
        }
        value = next;
        i++;
      }
    }
    const seen = raw.get(name);
    if (seen) seen.push(value);
    else raw.set(name, [value]);
  }
  return raw;
}

function readConfigFile(path: string, options: Options, readFile: ReadFile, foreign = false): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw optionError("config", `cannot read config file ${JSON.stringify(path)}: ${why}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw optionError("config", `config file ${JSON.stringify(path)} is not valid JSON: ${why}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw optionError("config", `config file ${JSON.stringify(path)} must contain a JSON object`);
  }
  const obj = data as Record<string, unknown>;
  if (foreign) return Object.fromEntries(Object.entries(obj).filter(([key]) => Object.hasOwn(options, key)));
  for (const key of Object.keys(obj)) {
    if (!Object.hasOwn(options, key)) {
      const hint = key === "config" ? " (a config file cannot name another)" : "";
      throw new ConfigError(key, `unknown key ${JSON.stringify(key)} in config file ${JSON.stringify(path)}${hint}`);
    }
  }
  return obj;
}

/**
 * Resolve all options of `spec` from argv (without the program name), env and
 * the optional JSON config file. Throws ConfigError, or HelpRequested for --help.
 */
export function load<O extends Options, R>(
  spec: Spec<O, R>,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  readFile: ReadFile = defaultReadFile,
): R {
  if (argv.includes("--help") || argv.includes("-h")) throw new HelpRequested(usage(spec));
  const { options } = spec;
  const flags = scanArgv(options, argv);

  const envValue = (name: string): string | undefined => {
    const v = env[envName(name)];
    return v === undefined || v.trim() === "" ? undefined : v; // empty means unset
  };

  const configFlag = flags.get("config");
  const configPath = configFlag ? configFlag[configFlag.length - 1] : envValue("config");
  if (configPath !== undefined) parseWith("config", () => CONFIG_KIND.parse(configPath));
  const file = configPath === undefined ? {} : readConfigFile(configPath, options, readFile, spec.foreignConfig);
  const fileWhere = configPath === undefined ? undefined : `config file ${JSON.stringify(configPath)}`;

  const values: Record<string, unknown> = { config: configPath };
  for (const [name, option] of Object.entries(options)) {
    const { kind } = option;
    const fromFlags = flags.get(name);
    const fromEnv = envValue(name);
    let value: unknown;
    if (fromFlags) {
      if (kind.list) {
        value = fromFlags.flatMap((raw) => parseWith(name, () => kind.parse(raw) as unknown[]));
      } else {
        value = parseWith(name, () => kind.parse(fromFlags[fromFlags.length - 1]!)); // last one wins
      }
    } else if (fromEnv !== undefined) {
      value = parseWith(name, () => kind.parse(fromEnv));
    } else if (file[name] !== undefined && file[name] !== null) {
      value = parseWith(name, () => kind.fromJson(file[name]), fileWhere);
    } else if (option.default !== undefined) {
      const d = option.default;
      value = parseWith(name, () => kind.parse(d), "the default");
    } else {
      value = kind.implicit;
    }
    const missing = value === undefined || (Array.isArray(value) && value.length === 0);
    if (option.required && missing) {
      throw optionError(name, `required (set --${flagName(name)}, ${envName(name)} or "${name}" in the config file)`);
    }
    values[name] = value;
  }
  return spec.finish(values as Values<O>);
}

// ---------------------------------------------------------------------------
// Help

function describeDefault(option: OptionMeta): string {
  if (option.required) return " Required.";
  if (option.defaultHelp !== undefined) return ` Default: ${option.defaultHelp}.`;
  if (option.default !== undefined) return ` Default: ${option.default}.`;
  return "";
}

/** Usage text generated from the spec: every option with its flag, env var and default. */
export function usage(spec: Pick<Spec<Options, unknown>, "program" | "summary" | "options">): string {
  const entries: Array<[string, Kind<unknown>, OptionMeta]> = Object.entries(spec.options).map(
    ([name, option]) => [name, option.kind, option],
  );
  entries.push(["config", CONFIG_KIND, { help: "JSON file of option values, keyed by camelCase option name." }]);
  const lines: string[] = [];
  for (const [name, kind, meta] of entries) {
    const metavar = kind.flag ? "" : ` ${kind.metavar}`;
    const help = meta.help.endsWith(".") ? meta.help : `${meta.help}.`;
    const repeat = kind.list ? " Repeatable or comma-separated." : "";
    const range = kind.range ? ` Range: ${kind.range}.` : "";
    lines.push(
      `  --${flagName(name)}${metavar}  [${envName(name)}]`,
      `      ${help}${describeDefault(meta)}${range}${repeat}`,
    );
  }
  return [
    `Usage: ${spec.program} [options]`,
    "",
    spec.summary,
    "",
    "Options (precedence: flags > ZTNA_* environment > --config file > defaults):",
    ...lines,
    "  --help, -h",
    "      Show this help and exit.",
    "",
    "Durations accept 10, 10s, 500ms, 2m (a bare number is seconds).",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------
// Entry point helper

export interface ProcessIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => never;
  readFile?: ReadFile;
}

function defaultIo(): ProcessIo {
  // `process` exists in Bun, Node and Deno 2; looked up lazily so tests can inject io.
  const proc = (globalThis as { process?: { exit(code: number): never } }).process;
  return {
    stdout: (text) => console.log(text),
    stderr: (text) => console.error(text),
    exit: (code) => {
      if (!proc) throw new Error(`exit ${code}`);
      return proc.exit(code);
    },
  };
}

/**
 * load() for program entry points: on ConfigError print `error: <message>` to
 * stderr and exit 2; on --help print usage and exit 0.
 */
export function loadOrExit<O extends Options, R>(
  spec: Spec<O, R>,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: ProcessIo = defaultIo(),
): R {
  try {
    return load(spec, argv, env, io.readFile);
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stdout(err.usage);
      return io.exit(0);
    }
    if (err instanceof ConfigError) {
      io.stderr(`error: ${err.message}`);
      return io.exit(2);
    }
    throw err;
  }
}
