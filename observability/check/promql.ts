// A small PromQL reader: just enough to list which series an expression
// selects, with which label matchers, and which labels its grouping clauses
// name. It is not a full parser — it covers the subset the dashboard and the
// alert rules use, and throws on anything it cannot place, so a construct it
// does not understand fails the check instead of being skipped silently.

export interface Matcher {
  label: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

export interface Selector {
  /** Series name as written, e.g. `ztna_server_handshake_duration_seconds_bucket`. */
  metric: string;
  matchers: Matcher[];
}

export interface Grouping {
  kind: "by" | "without" | "on" | "ignoring" | "group_left" | "group_right";
  labels: string[];
  /**
   * Series the labels must exist on. For `by`/`without`: every series inside
   * the aggregated expression. For vector-matching clauses: any series of
   * the whole expression (the checker only asks that one side has it).
   */
  metrics: string[];
}

export interface QueryUses {
  selectors: Selector[];
  groupings: Grouping[];
}

type TokenKind = "ident" | "number" | "string" | "range" | "op" | "var";
interface Token {
  kind: TokenKind;
  text: string;
}

const AGGREGATIONS = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
]);
const BINARY_KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"]);
const MATCHING = new Set(["on", "ignoring", "group_left", "group_right"]);
const OPS = [
  "==",
  "!=",
  "=~",
  "!~",
  ">=",
  "<=",
  "=",
  ">",
  "<",
  "+",
  "-",
  "*",
  "/",
  "%",
  "^",
  "(",
  ")",
  "{",
  "}",
  ",",
  "@",
];

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "#") {
      const nl = expr.indexOf("\n", i);
      i = nl < 0 ? expr.length : nl;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      let value = "";
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === "\\" && c !== "`") j++;
        value += expr[j] ?? "";
        j++;
      }
      if (j >= expr.length) throw new Error(`unterminated string in: ${expr}`);
      tokens.push({ kind: "string", text: value });
      i = j + 1;
      continue;
    }
    if (c === "[") {
      // Range or subquery duration (may hold a Grafana variable): opaque.
      const j = expr.indexOf("]", i);
      if (j < 0) throw new Error(`unterminated [ in: ${expr}`);
      tokens.push({ kind: "range", text: expr.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const variable = /^\$(\{[^}]*\}|\w+)/.exec(rest);
    if (variable) {
      tokens.push({ kind: "var", text: variable[0] });
      i += variable[0].length;
      continue;
    }
    const number = /^(0x[0-9a-f]+|(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?(ms|[smhdwy])*)/i.exec(rest);
    if (number) {
      tokens.push({ kind: "number", text: number[0] });
      i += number[0].length;
      continue;
    }
    const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest);
    if (ident) {
      tokens.push({ kind: "ident", text: ident[0] });
      i += ident[0].length;
      continue;
    }
    const op = OPS.find((o) => rest.startsWith(o));
    if (op === undefined) throw new Error(`unexpected character ${JSON.stringify(c)} in: ${expr}`);
    tokens.push({ kind: "op", text: op });
    i += op.length;
  }
  return tokens;
}

/** Index of the `)` matching the `(` at `open`. */
function closing(tokens: Token[], open: number, expr: string): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "op") continue;
    if (t.text === "(") depth++;
    else if (t.text === ")" && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses in: ${expr}`);
}

const isOp = (t: Token | undefined, text: string) => t !== undefined && t.kind === "op" && t.text === text;

/** Reads `( a, b, ... )` starting at `open`; returns the names and the index after `)`. */
function labelList(tokens: Token[], open: number, expr: string): { labels: string[]; next: number } {
  if (!isOp(tokens[open], "(")) throw new Error(`expected ( after grouping keyword in: ${expr}`);
  const end = closing(tokens, open, expr);
  const labels: string[] = [];
  for (let i = open + 1; i < end; i++) {
    const t = tokens[i]!;
    if (t.kind === "ident") labels.push(t.text);
    else if (!isOp(t, ",")) throw new Error(`unexpected ${t.text} in label list of: ${expr}`);
  }
  return { labels, next: end + 1 };
}

/** Reads `{ label op "value", ... }` starting at `open`. */
function matchers(tokens: Token[], open: number, expr: string): { matchers: Matcher[]; next: number } {
  const out: Matcher[] = [];
  let i = open + 1;
  while (!isOp(tokens[i], "}")) {
    const label = tokens[i];
    const op = tokens[i + 1];
    const value = tokens[i + 2];
    if (
      label?.kind !== "ident" || op?.kind !== "op" || !["=", "!=", "=~", "!~"].includes(op.text) ||
      value?.kind !== "string"
    ) {
      throw new Error(`cannot read label matchers in: ${expr}`);
    }
    out.push({ label: label.text, op: op.text as Matcher["op"], value: value.text });
    i += 3;
    if (isOp(tokens[i], ",")) i++;
  }
  return { matchers: out, next: i + 1 };
}

export function analyseQuery(expr: string): QueryUses {
  const tokens = tokenize(expr);
  const selectors: (Selector & { at: number })[] = [];
  const groupings: { kind: Grouping["kind"]; labels: string[]; from: number; to: number }[] = [];

  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (isOp(t, "{")) {
      // A selector without a leading name: only `{__name__="x"}` is understood.
      const m = matchers(tokens, i, expr);
      const name = m.matchers.find((x) => x.label === "__name__" && x.op === "=");
      if (!name) throw new Error(`selector without a metric name in: ${expr}`);
      selectors.push({ metric: name.value, matchers: m.matchers.filter((x) => x !== name), at: i });
      i = m.next;
      continue;
    }
    if (t.kind !== "ident") {
      i++;
      continue;
    }
    const word = t.text.toLowerCase();
    const next = tokens[i + 1];
    if (word === "by" || word === "without") {
      const list = labelList(tokens, i + 1, expr);
      const prev = tokens[i - 1];
      let from: number;
      let to: number;
      if (prev?.kind === "ident" && AGGREGATIONS.has(prev.text)) {
        // sum by (x) ( body )
        from = list.next;
        to = closing(tokens, from, expr);
      } else if (isOp(prev, ")")) {
        // sum ( body ) by (x): find the group that `prev` closes.
        let open = -1;
        for (let j = i - 1; j >= 0 && open < 0; j--) {
          if (isOp(tokens[j], "(") && closing(tokens, j, expr) === i - 1) open = j;
        }
        const agg = tokens[open - 1];
        if (open < 0 || agg?.kind !== "ident" || !AGGREGATIONS.has(agg.text)) {
          throw new Error(`${word} (...) not attached to an aggregation in: ${expr}`);
        }
        from = open;
        to = i - 1;
      } else {
        throw new Error(`${word} (...) not attached to an aggregation in: ${expr}`);
      }
      groupings.push({ kind: word, labels: list.labels, from, to });
      i = list.next;
      continue;
    }
    if (MATCHING.has(word)) {
      if (isOp(next, "(")) {
        const list = labelList(tokens, i + 1, expr);
        groupings.push({ kind: word as Grouping["kind"], labels: list.labels, from: 0, to: tokens.length });
        i = list.next;
      } else {
        i++;
      }
      continue;
    }
    const groupedAggregation = AGGREGATIONS.has(word) && next?.kind === "ident" &&
      ["by", "without"].includes(next.text.toLowerCase());
    if (BINARY_KEYWORDS.has(word) || isOp(next, "(") || groupedAggregation) {
      // Operator keyword, or a function / aggregation name: its arguments are read as we go.
      i++;
      continue;
    }
    if (isOp(next, "{")) {
      const m = matchers(tokens, i + 1, expr);
      selectors.push({ metric: t.text, matchers: m.matchers, at: i });
      i = m.next;
    } else {
      selectors.push({ metric: t.text, matchers: [], at: i });
      i++;
    }
  }

  return {
    selectors: selectors.map(({ metric, matchers }) => ({ metric, matchers })),
    groupings: groupings.map((g) => ({
      kind: g.kind,
      labels: g.labels,
      metrics: [...new Set(selectors.filter((s) => s.at >= g.from && s.at <= g.to).map((s) => s.metric))],
    })),
  };
}
