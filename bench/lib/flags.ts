/** The bench's command line: which rows to run and how long each one measures. */

/** Every row, in the order they run. */
export const ROWS = ["rtt", "goodput", "neighbour", "tcp-bulk", "tcp-rr", "lossy", "scale", "abuse", "naive"] as const;
export type RowName = (typeof ROWS)[number];

/** Names that select several rows at once. */
const GROUPS: Record<string, RowName[]> = {
  udp: ["rtt", "goodput", "neighbour"],
  tcp: ["tcp-bulk", "tcp-rr"],
  tunnel: ["rtt", "goodput", "neighbour", "tcp-bulk", "tcp-rr", "lossy"],
  neighbor: ["neighbour"],
  all: [...ROWS],
};

/** The naive @matrixai/quic baseline predates issue 9's goals: run it only when asked. */
const DEFAULT_ROWS = ROWS.filter((r) => r !== "naive");

export interface BenchConfig {
  rows: RowName[];
  /** Length of each timed phase: a goodput row, a TCP run, a noisy-neighbour phase. */
  seconds: number;
  /** Back-to-back round trips per path (after `warmup`). */
  rttCount: number;
  warmup: number;
  /** Sparse round trips per path, one every `sparseIntervalMs`. */
  sparseCount: number;
  sparseIntervalMs: number;
  /** Offered rates of the goodput rows, datagrams/s; 0 = as fast as the sender can. */
  rates: number[];
  /** The noisy neighbour's steady rate, datagrams/s (its other phase floods at full speed). */
  neighbourRate: number;
  /** Concurrent connections of the TCP request/response rows. */
  rrConnections: number[];
  /** Agent connections the scale row ramps to, in steps. */
  scaleSteps: number[];
  /** The lossy row's impairment, each direction: probabilities 0..1. */
  loss: number;
  reorder: number;
  /** Refused handshakes of the abuse row, and how long it watches the server's RSS afterwards. */
  abuseHandshakes: number;
  abuseWatchSeconds: number;
  /** Passed to every program as --max-udp-payload (default: the programs' own). */
  maxUdpPayload: number | null;
  /** `ssh -L` beside the tunnel in the TCP rows (when sshd and ssh are installed). */
  ssh: boolean;
  verbose: boolean;
  quick: boolean;
}

export const USAGE = `usage: bun bench/run.ts [flags]     (npm run bench -- [flags])
  --only LIST          rows to run (default: all but naive): ${ROWS.join(", ")};
                       groups: udp, tcp, tunnel, all
  --skip LIST          rows to leave out
  --quick              short phases for iterating on one row (1.5 s, fewer round trips,
                       rates 25000,100000,0, scale 1000, 500 refused handshakes)
  --seconds N          length of each timed phase (default 5)
  --count N            back-to-back round trips per path (default 5000)
  --sparse N           sparse round trips per path, one every 5 ms (default 1000)
  --rates LIST         goodput offered rates per second, 0 = full speed (default 25000,50000,100000,150000,0)
  --neighbour-rate N   the noisy neighbour's steady rate (default 20000)
  --connections LIST   TCP request/response concurrency (default 1,20)
  --scale LIST         agent connections of the scale row (default 1000,5000,10000)
  --loss P,R           the lossy row's loss and reordering probabilities, each way (default 0.02,0.02)
  --abuse N            refused handshakes of the abuse row (default 2000)
  --abuse-watch N      seconds to watch the server's RSS after them (default 30)
  --max-udp-payload N  QUIC packet size of every program (default: theirs, 1350)
  --no-ssh             leave ssh -L out of the TCP rows
  --verbose            echo the programs' logs`;

export class FlagError extends Error {}

function rowList(text: string): RowName[] {
  const out: RowName[] = [];
  for (const name of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const rows = GROUPS[name] ?? ((ROWS as readonly string[]).includes(name) ? [name as RowName] : null);
    if (!rows) {
      throw new FlagError(
        `unknown row "${name}" (rows: ${ROWS.join(", ")}; groups: ${Object.keys(GROUPS).join(", ")})`,
      );
    }
    out.push(...rows);
  }
  return out;
}

function numbers(name: string, text: string, min: number): number[] {
  const list = text.split(",").map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n < min)) {
    throw new FlagError(`--${name} wants comma-separated numbers ≥ ${min}, got "${text}"`);
  }
  return list;
}

function lossFlag(text: string | undefined): { loss: number; reorder: number } {
  if (text === undefined) return { loss: 0.02, reorder: 0.02 };
  const [loss, reorder = 0] = numbers("loss", text, 0);
  if (loss! > 1 || reorder > 1) throw new FlagError(`--loss wants probabilities between 0 and 1, got "${text}"`);
  return { loss: loss!, reorder };
}

/** Parses argv (without the program); throws FlagError with a message for the user. */
export function parseFlags(argv: string[]): BenchConfig {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const SWITCHES = ["quick", "no-ssh", "verbose", "help"];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new FlagError(`unexpected argument "${arg}"`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (SWITCHES.includes(name)) {
      switches.add(name);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new FlagError(`--${name} needs a value`);
    values.set(name, value);
  }
  const known = [
    "only",
    "skip",
    "seconds",
    "count",
    "sparse",
    "rates",
    "neighbour-rate",
    "connections",
    "scale",
    "loss",
    "abuse",
    "abuse-watch",
    "max-udp-payload",
  ];
  for (const name of values.keys()) if (!known.includes(name)) throw new FlagError(`unknown flag --${name}`);
  if (switches.has("help")) throw new FlagError(USAGE);

  const quick = switches.has("quick");
  const num = (name: string, fallback: number, min = 0) => {
    const text = values.get(name);
    if (text === undefined) return fallback;
    const [n] = numbers(name, text, min);
    return n!;
  };
  const list = (name: string, fallback: number[], min = 0) => {
    const text = values.get(name);
    return text === undefined ? fallback : numbers(name, text, min);
  };

  let rows = values.has("only") ? rowList(values.get("only")!) : [...DEFAULT_ROWS];
  const skip = new Set(values.has("skip") ? rowList(values.get("skip")!) : []);
  rows = ROWS.filter((r) => rows.includes(r) && !skip.has(r));
  if (rows.length === 0) throw new FlagError("no rows left to run");

  return {
    rows,
    seconds: num("seconds", quick ? 1.5 : 5, 0.2),
    rttCount: num("count", quick ? 1_000 : 5_000, 1),
    warmup: quick ? 200 : 500,
    sparseCount: num("sparse", quick ? 200 : 1_000, 1),
    sparseIntervalMs: 5,
    rates: list("rates", quick ? [25_000, 100_000, 0] : [25_000, 50_000, 100_000, 150_000, 0]),
    neighbourRate: num("neighbour-rate", 20_000, 1),
    rrConnections: list("connections", [1, 20], 1),
    scaleSteps: list("scale", quick ? [1_000] : [1_000, 5_000, 10_000], 1).sort((a, b) => a - b),
    ...lossFlag(values.get("loss")),
    abuseHandshakes: num("abuse", quick ? 500 : 2_000, 1),
    abuseWatchSeconds: num("abuse-watch", quick ? 10 : 30, 1),
    maxUdpPayload: values.has("max-udp-payload") ? num("max-udp-payload", 0, 1200) : null,
    ssh: !switches.has("no-ssh"),
    verbose: switches.has("verbose"),
    quick,
  };
}
