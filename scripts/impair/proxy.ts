/**
 * The impairment proxy: a UDP proxy in its own process that makes a loopback
 * path look like the internet (loss, reordering, duplication, delay, jitter),
 * per direction, seeded, and changeable while it runs. These machines have no
 * netem, so tests and the bench put this between two QUIC endpoints.
 *
 *   bun scripts/impair/proxy.ts --target HOST:PORT [--listen HOST:PORT] [--seed N]
 *       [--loss P] [--reorder P] [--duplicate P] [--delay MS] [--jitter MS] [--max-payload BYTES]
 *       [--up-loss P] [--down-loss P] ...   (per direction; "up" = toward target)
 *
 * Each client address gets its own upstream socket, so the target sees one
 * source per client, as behind a NAT. Stdout carries JSON lines: first
 * {"event":"listening","host","port"}, then answers to commands. Stdin takes
 * JSON lines: {"id":1,"op":"set","dir":"up"|"down"|"both","settings":{...}},
 * {"id":2,"op":"stats"}, {"id":3,"op":"reset"}. The proxy exits when stdin
 * closes, so it never outlives the process that started it.
 */
import { openUdp, type UdpSocket } from "../../core/runtime/udp.ts";
import { CLEAN, decide, type Direction, type Impairment, invalidImpairment, seededRandom } from "./model.ts";

interface LineStats {
  received: number;
  sent: number;
  dropped: number;
  held: number;
  duplicated: number;
  bytes: number;
}

interface Queued {
  due: number;
  seq: number;
  data: Uint8Array;
  send: () => void;
}

/** One direction of the path: its settings, its random source, its queues and counters. */
interface Line {
  settings: Impairment;
  random: () => number;
  held: Queued[];
  holdTimer: ReturnType<typeof setTimeout> | null;
  stats: LineStats;
}

function newStats(): LineStats {
  return { received: 0, sent: 0, dropped: 0, held: 0, duplicated: 0, bytes: 0 };
}

function parseAddress(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(":");
  const port = Number(text.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  }
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

function parseArgs(argv: string[]) {
  const out: { target?: string; listen: string; seed: number; up: Partial<Impairment>; down: Partial<Impairment> } = {
    listen: "127.0.0.1:0",
    seed: 1,
    up: {},
    down: {},
  };
  const names: Record<string, keyof Impairment> = {
    loss: "loss",
    reorder: "reorder",
    "reorder-hold": "reorderHoldMs",
    "max-payload": "maxPayload",
    duplicate: "duplicate",
    delay: "delayMs",
    jitter: "jitterMs",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--target") out.target = value;
    else if (flag === "--listen") out.listen = value;
    else if (flag === "--seed") out.seed = Number(value);
    else {
      const m = /^--(?:(up|down)-)?([a-z-]+)$/.exec(flag);
      const key = m ? names[m[2]!] : undefined;
      if (!m || !key) throw new Error(`unknown flag ${flag}`);
      const n = Number(value.replace(/ms$/, ""));
      if (!m[1] || m[1] === "up") out.up[key] = n;
      if (!m[1] || m[1] === "down") out.down[key] = n;
    }
  }
  if (!out.target) throw new Error("--target HOST:PORT is required");
  for (const dir of [out.up, out.down]) {
    const why = invalidImpairment(dir);
    if (why) throw new Error(why);
  }
  return out;
}

/** A binary min-heap on (due, seq): packets leave in release order, FIFO among equals. */
function createTimeline() {
  const heap: Queued[] = [];
  const before = (a: Queued, b: Queued) => a.due < b.due || (a.due === b.due && a.seq < b.seq);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = Infinity;

  function push(item: Queued) {
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
    arm();
  }

  function pop(): Queued {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }

  function arm() {
    if (heap.length === 0) return;
    const due = heap[0]!.due;
    if (timer !== null && timerAt <= due) return;
    if (timer !== null) clearTimeout(timer);
    timerAt = due;
    timer = setTimeout(release, Math.max(0, due - performance.now()));
  }

  function release() {
    timer = null;
    timerAt = Infinity;
    // Timers fire up to a millisecond late; anything due within half a
    // millisecond leaves now rather than waiting for another timer.
    const now = performance.now() + 0.5;
    while (heap.length > 0 && heap[0]!.due <= now) pop().send();
    arm();
  }

  return { push };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const target = parseAddress(args.target!);
  const listenAt = parseAddress(args.listen);
  let seq = 0;

  const lines: Record<Direction, Line> = {
    up: {
      settings: { ...CLEAN, ...args.up },
      random: seededRandom(args.seed),
      held: [],
      holdTimer: null,
      stats: newStats(),
    },
    down: {
      settings: { ...CLEAN, ...args.down },
      random: seededRandom(args.seed * 7919 + 1),
      held: [],
      holdTimer: null,
      stats: newStats(),
    },
  };
  const timeline = createTimeline();

  /** Lets held packets go; when `after` is given they leave just behind it. */
  function releaseHeld(line: Line, after?: Queued) {
    if (line.holdTimer !== null) clearTimeout(line.holdTimer);
    line.holdTimer = null;
    const held = line.held;
    line.held = [];
    for (const item of held) {
      if (after) {
        item.due = Math.max(item.due, after.due);
        item.seq = seq++;
      }
      schedule(item);
    }
  }

  /** Puts one packet through a direction's impairments; `send` delivers it. */
  function impair(line: Line, data: Uint8Array, send: (data: Uint8Array) => void) {
    const stats = line.stats;
    stats.received++;
    const verdict = decide(line.settings, line.random);
    if (verdict.drop || (line.settings.maxPayload > 0 && data.length > line.settings.maxPayload)) {
      stats.dropped++;
      return;
    }
    const deliver = () => {
      stats.sent++;
      stats.bytes += data.length;
      send(data);
    };
    for (let copy = 0; copy < verdict.copies; copy++) {
      if (copy === 1) stats.duplicated++;
      const item: Queued = { due: performance.now() + verdict.delayMs, seq: seq++, data, send: deliver };
      if (verdict.hold && copy === 0) {
        stats.held++;
        // Held until the next packet of this direction has gone, or the hold time ends.
        line.held.push(item);
        line.holdTimer ??= setTimeout(() => releaseHeld(line), line.settings.reorderHoldMs);
        continue;
      }
      schedule(item);
      if (line.held.length > 0) releaseHeld(line, item);
    }
  }

  function schedule(item: Queued) {
    if (item.due <= performance.now()) item.send();
    else timeline.push(item);
  }

  // One upstream socket per client address; packets that arrive while it opens wait.
  const upstreams = new Map<string, Promise<UdpSocket>>();
  const upstreamFor = (host: string, port: number): Promise<UdpSocket> => {
    const key = `${host}|${port}`;
    let socket = upstreams.get(key);
    if (socket === undefined) {
      socket = openUdp({
        host: target.host.includes(":") ? "::1" : "127.0.0.1",
        port: 0,
        onPacket(data) {
          impair(lines.down, data, (d) => listener.send(d, port, host));
        },
        onError() {
          // ICMP unreachable from a target that is gone: the client will notice.
        },
      });
      upstreams.set(key, socket);
    }
    return socket;
  };
  const ready = new Map<string, UdpSocket>();

  const listener = await openUdp({
    host: listenAt.host,
    port: listenAt.port,
    onPacket(data, port, host) {
      const key = `${host}|${port}`;
      const up = ready.get(key);
      if (up) {
        impair(lines.up, data, (d) => up.send(d, target.port, target.host));
        return;
      }
      const copy = data.slice();
      void upstreamFor(host, port).then((socket) => {
        ready.set(key, socket);
        impair(lines.up, copy, (d) => socket.send(d, target.port, target.host));
      });
    },
    onError() {},
  });

  const write = (obj: unknown) => process.stdout.write(JSON.stringify(obj) + "\n");
  write({ event: "listening", host: listener.address.host, port: listener.address.port });

  function handle(command: { id?: number; op?: string; dir?: string; settings?: Record<string, unknown> }) {
    const id = command.id;
    switch (command.op) {
      case "set": {
        const dirs: Direction[] = command.dir === "both" ? ["up", "down"] : [command.dir as Direction];
        if (!dirs.every((d) => d === "up" || d === "down")) return write({ id, error: `dir must be up, down or both` });
        const why = invalidImpairment(command.settings ?? {});
        if (why) return write({ id, error: why });
        for (const d of dirs) {
          lines[d].settings = { ...lines[d].settings, ...(command.settings as Partial<Impairment>) };
        }
        return write({ id, ok: true, up: lines.up.settings, down: lines.down.settings });
      }
      case "stats":
        return write({ id, ok: true, up: lines.up.stats, down: lines.down.stats, clients: upstreams.size });
      case "reset":
        lines.up.stats = newStats();
        lines.down.stats = newStats();
        return write({ id, ok: true });
      default:
        return write({ id, error: `unknown op ${JSON.stringify(command.op)}` });
    }
  }

  let pending = "";
  process.stdin.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (text === "") continue;
      try {
        handle(JSON.parse(text));
      } catch (error) {
        write({ error: `bad command: ${(error as Error).message}` });
      }
    }
  });
  const shutdown = async () => {
    listener.close();
    for (const socket of upstreams.values()) (await socket).close();
    process.exit(0);
  };
  process.stdin.on("end", shutdown);
  process.stdin.on("close", shutdown);
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main().catch((error) => {
  process.stderr.write(`impair: ${(error as Error).message}\n`);
  process.exit(2);
});
