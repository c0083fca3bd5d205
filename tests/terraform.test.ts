/**
 * Static checks of the deployment files, none of which CI here can run for
 * real (no terraform binary, no AWS, no Docker, no GitHub runner):
 *
 * - terraform/ parsed with HashiCorp's own HCL parser (Go, compiled to wasm in
 *   @cdktf/hcl2json) and checked by small functions that return problems;
 * - the inventory template rendered from its syntax tree and read as YAML;
 * - scripts/deploy-aws run against stub terraform/ansible/npm commands;
 * - the GitHub workflows and the Containerfile read for what CI relies on.
 *
 * Every checker also runs on a deliberately broken module and must name each
 * planted problem, so a checker that silently passes everything fails here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { getExpressionAst, parse } from "@cdktf/hcl2json";
import { generateKeyPairSync } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const TF_DIR = join(ROOT, "terraform");
const DEPLOY_SCRIPT = join(ROOT, "scripts", "deploy-aws");

// ------------------------------------------------------------------ loading

type Body = Record<string, unknown>;

interface Resource {
  type: string;
  name: string;
  body: Body;
}

interface Module {
  /** Parsed JSON of each .tf file, by file name. */
  files: Map<string, Body>;
  variables: Map<string, Body>;
  outputs: Map<string, Body>;
  locals: Map<string, unknown>;
  resources: Resource[];
  data: Resource[];
  terraform: Body[];
}

/** hcl2json gives labelled blocks as { label: [body] }; one body per label here. */
function labelled(section: unknown): [string, Body][] {
  if (section === undefined) return [];
  return Object.entries(section as Record<string, Body[]>).map(([label, bodies]) => [label, bodies[0]!]);
}

function typed(section: unknown): Resource[] {
  const out: Resource[] = [];
  for (const [type, byName] of Object.entries((section ?? {}) as Record<string, unknown>)) {
    for (const [name, body] of labelled(byName)) out.push({ type, name, body });
  }
  return out;
}

async function loadModule(dir: string): Promise<Module> {
  const mod: Module = {
    files: new Map(),
    variables: new Map(),
    outputs: new Map(),
    locals: new Map(),
    resources: [],
    data: [],
    terraform: [],
  };
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".tf")).sort()) {
    // parse() rejects with the parser's diagnostics on a syntax error.
    const json = (await parse(name, readFileSync(join(dir, name), "utf8"))) as Body;
    mod.files.set(name, json);
    for (const [k, v] of labelled(json.variable)) mod.variables.set(k, v);
    for (const [k, v] of labelled(json.output)) mod.outputs.set(k, v);
    for (const block of (json.locals ?? []) as Body[]) for (const [k, v] of Object.entries(block)) mod.locals.set(k, v);
    mod.resources.push(...typed(json.resource));
    mod.data.push(...typed(json.data));
    mod.terraform.push(...((json.terraform ?? []) as Body[]));
  }
  return mod;
}

/** Every string anywhere in a parsed value. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) { for (const v of value) strings(v, out); }
  else if (value !== null && typeof value === "object") { for (const v of Object.values(value)) strings(v, out); }
  return out;
}

/** Names X of `var.X` in expressions (hcl2json keeps expressions as "${...}" strings). */
function varRefs(value: unknown): Set<string> {
  const names = new Set<string>();
  for (const s of strings(value)) {
    if (!s.includes("${")) continue; // a plain string: a description mentioning var.x is not a reference
    for (const m of s.matchAll(/(?<![\w.])var\.([A-Za-z_][\w-]*)/g)) names.add(m[1]!);
  }
  return names;
}

function refersTo(value: unknown, variable: string): boolean {
  return varRefs(value).has(variable);
}

// ------------------------------------------------------------------ checkers

function undeclaredVariables(mod: Module): string[] {
  const problems: string[] = [];
  for (const [file, json] of mod.files) {
    for (const name of varRefs(json)) {
      if (!mod.variables.has(name)) problems.push(`${file}: var.${name} is used but never declared`);
    }
  }
  return problems;
}

function variableProblems(mod: Module, mustValidate: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [name, body] of mod.variables) {
    if (body.type === undefined) problems.push(`variable ${name} has no type`);
    if (typeof body.description !== "string" || body.description.trim() === "") {
      problems.push(`variable ${name} has no description`);
    }
    for (const v of (body.validation ?? []) as Body[]) {
      if (!refersTo(v.condition, name)) {
        problems.push(`variable ${name}: a validation condition does not test var.${name}`);
      }
      if (typeof v.error_message !== "string" || v.error_message.trim() === "") {
        problems.push(`variable ${name}: a validation has no error_message`);
      }
    }
  }
  for (const name of mustValidate) {
    const body = mod.variables.get(name);
    if (body === undefined) problems.push(`variable ${name} is not declared`);
    else if (!Array.isArray(body.validation) || body.validation.length === 0) {
      problems.push(`variable ${name} has no validation`);
    }
  }
  return problems;
}

/**
 * Output names a shell script reads with `terraform [...] output [-raw|-json] NAME`,
 * also spelt "$TERRAFORM" or through a `tf` wrapper function.
 */
function outputsUsedBy(script: string): Set<string> {
  const names = new Set<string>();
  const command = /(?:\bterraform\b|\$\{?TERRAFORM\}?|\btf\b)[^\n]*?\soutput\s+(?:-(?:raw|json)\s+)*([A-Za-z_][\w-]*)/g;
  for (const m of script.matchAll(command)) names.add(m[1]!);
  return names;
}

function missingOutputs(mod: Module, script: string): string[] {
  return [...outputsUsedBy(script)].filter((n) => !mod.outputs.has(n)).map((n) =>
    `output ${n} is read by the script but not declared`
  );
}

// Ingress rules, from the three ways the AWS provider spells them.
interface Ingress {
  where: string;
  protocol: unknown;
  from: unknown;
  to: unknown;
  /** The source fields that are set (cidr_ipv4, cidr_blocks, referenced group...). */
  sources: Record<string, unknown>;
  /** count / for_each (of the resource or the dynamic block) that decides whether it exists. */
  gate: unknown;
}

const SOURCE_FIELDS = [
  "cidr_ipv4",
  "cidr_ipv6",
  "cidr_blocks",
  "ipv6_cidr_blocks",
  "prefix_list_id",
  "prefix_list_ids",
  "referenced_security_group_id",
  "source_security_group_id",
  "security_groups",
  "self",
];

function ingressOf(where: string, rule: Body, gate: unknown): Ingress {
  const sources: Record<string, unknown> = {};
  for (const f of SOURCE_FIELDS) if (rule[f] !== undefined) sources[f] = rule[f];
  return { where, protocol: rule.ip_protocol ?? rule.protocol, from: rule.from_port, to: rule.to_port, sources, gate };
}

function ingressRules(mod: Module): Ingress[] {
  const rules: Ingress[] = [];
  for (const r of mod.resources) {
    const where = `${r.type}.${r.name}`;
    const gate = r.body.count ?? r.body.for_each;
    if (r.type === "aws_vpc_security_group_ingress_rule") rules.push(ingressOf(where, r.body, gate));
    if (r.type === "aws_security_group_rule" && r.body.type === "ingress") rules.push(ingressOf(where, r.body, gate));
    if (r.type === "aws_security_group") {
      for (const rule of (r.body.ingress ?? []) as Body[]) {
        rules.push(ingressOf(`${where} (inline ingress)`, rule, gate));
      }
      const dynamic = (r.body.dynamic ?? {}) as Record<string, Body[]>;
      for (const block of dynamic.ingress ?? []) {
        for (const content of (block.content ?? []) as Body[]) {
          rules.push(ingressOf(`${where} (dynamic ingress)`, content, block.for_each));
        }
      }
    }
  }
  return rules;
}

/** A port as a number: a literal, or "${local.NAME}" naming a numeric local. */
function portNumber(mod: Module, value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const local = /^\$\{local\.(\w+)\}$/.exec(value);
  return local ? portNumber(mod, mod.locals.get(local[1]!)) : undefined;
}

/** The ports a rule opens, or a problem when they cannot be worked out statically. */
function portRange(mod: Module, rule: Ingress): [number, number] | string {
  if (rule.protocol === "-1" || rule.protocol === -1 || rule.protocol === "all") return [0, 65535];
  const from = portNumber(mod, rule.from);
  const to = portNumber(mod, rule.to);
  if (from === undefined || to === undefined) return `${rule.where}: cannot tell which ports it opens`;
  return [from, to];
}

/** True when every source of the rule is a CIDR taken from var.<list> (directly or via each.value of a gate over it). */
function sourcesFrom(rule: Ingress, list: string): boolean {
  const entries = Object.entries(rule.sources);
  if (entries.length === 0) return false;
  return entries.every(([field, value]) => {
    if (!field.startsWith("cidr") && !field.startsWith("ipv6")) return false; // groups, prefix lists, self
    if (refersTo(value, list)) return true;
    return strings(value).every((s) => /^\$\{(each\.(value|key)|ingress\.(value|key))\}$/.test(s)) &&
      refersTo(rule.gate, list);
  });
}

const OPS_PORTS: [number, number] = [9090, 9092];

/** Ops ports open only when var.expose_ops is on, and then only to var.admin_cidrs. */
function opsPortProblems(mod: Module): string[] {
  const problems: string[] = [];
  for (const rule of ingressRules(mod)) {
    const range = portRange(mod, rule);
    if (typeof range === "string") {
      problems.push(range);
      continue;
    }
    if (range[1] < OPS_PORTS[0] || range[0] > OPS_PORTS[1]) continue;
    if (!refersTo(rule.gate, "expose_ops")) {
      problems.push(`${rule.where}: opens ${range.join("-")} (ops ports) without depending on var.expose_ops`);
    }
    if (!sourcesFrom(rule, "admin_cidrs")) {
      problems.push(`${rule.where}: opens ${range.join("-")} (ops ports) to sources other than var.admin_cidrs`);
    }
  }
  return problems;
}

/** SSH only from var.admin_cidrs. */
function sshProblems(mod: Module): string[] {
  const problems: string[] = [];
  for (const rule of ingressRules(mod)) {
    const range = portRange(mod, rule);
    if (typeof range === "string") continue; // reported by opsPortProblems
    if (range[0] <= 22 && range[1] >= 22 && !sourcesFrom(rule, "admin_cidrs")) {
      problems.push(`${rule.where}: opens SSH to sources other than var.admin_cidrs`);
    }
  }
  return problems;
}

function firstBlock(body: Body, name: string): Body | undefined {
  const blocks = body[name];
  return Array.isArray(blocks) ? (blocks[0] as Body | undefined) : undefined;
}

/** Every aws_instance: IMDSv2 only, encrypted root volume. */
function instanceProblems(mod: Module): string[] {
  const problems: string[] = [];
  for (const r of mod.resources.filter((x) => x.type === "aws_instance")) {
    if (firstBlock(r.body, "metadata_options")?.http_tokens !== "required") {
      problems.push(`aws_instance.${r.name}: metadata_options.http_tokens is not "required" (IMDSv2)`);
    }
    if (firstBlock(r.body, "root_block_device")?.encrypted !== true) {
      problems.push(`aws_instance.${r.name}: root_block_device.encrypted is not true`);
    }
  }
  return problems;
}

// ------------------------------------------------------------------ templatefile

interface AstNode {
  type: string;
  children: AstNode[];
  meta?: Record<string, unknown>;
}

async function ast(file: string, expression: string): Promise<AstNode> {
  const node = (await getExpressionAst(file, expression)) as unknown as AstNode | null;
  if (node === null) throw new Error(`${file}: no syntax tree for ${expression.slice(0, 60)}`);
  return node;
}

function walk(node: AstNode, visit: (n: AstNode) => void): void {
  visit(node);
  for (const c of node.children) walk(c, visit);
}

function segments(node: AstNode): string[] {
  return ((node.meta?.traversal ?? []) as { segment: string }[]).map((t) => t.segment);
}

/** What a templatefile() call passes: each key, and for a key given as [for ... : { ... }] the object's keys. */
interface TemplateCall {
  where: string;
  path: string;
  passed: Map<string, Set<string> | null>;
}

async function templateCalls(mod: Module): Promise<TemplateCall[]> {
  const calls: TemplateCall[] = [];
  for (const [file, json] of mod.files) {
    for (const s of strings(json).filter((x) => x.includes("templatefile("))) {
      // hcl2json wraps an expression as "${...}": unwrap it to parse the call.
      const root = await ast(file, s.startsWith("${") && s.endsWith("}") ? s.slice(2, -1) : s);
      const found: AstNode[] = [];
      walk(root, (n) => {
        if (n.type === "function" && n.meta?.name === "templatefile") found.push(n);
      });
      for (const call of found) {
        const [pathArg, varsArg] = call.children;
        const path = String(pathArg?.meta?.value ?? "").replace(/^"|"$/g, "").replace("${path.module}/", "");
        const passed = new Map<string, Set<string> | null>();
        const items = (varsArg?.meta?.items ?? {}) as Record<string, string>;
        for (const [key, text] of Object.entries(items)) {
          const valueNode = varsArg!.children.find((c) => c.meta?.value === text);
          const object = valueNode?.type === "for" ? valueNode.children.find((c) => c.type === "object") : undefined;
          passed.set(key, object ? new Set(Object.keys((object.meta?.items ?? {}) as object)) : null);
        }
        calls.push({ where: file, path, passed });
      }
    }
  }
  return calls;
}

/** A template's syntax tree, parsed by HCL as a heredoc holding exactly the file's text. */
function templateAst(text: string): Promise<AstNode> {
  // The heredoc's closing marker must start a line of its own.
  if (!text.endsWith("\n")) throw new Error("template must end with a newline");
  return ast("template", `<<EOT\n${text}EOT\n`);
}

/** Free variables of a template, and the attributes read on each `for x in VAR` loop variable. */
function templateUses(root: AstNode): { free: Set<string>; attrs: Map<string, Set<string>> } {
  const free = new Set<string>();
  const attrs = new Map<string, Set<string>>();
  const visit = (node: AstNode, bound: Map<string, string | null>): void => {
    if (node.type === "scopeTraversal") {
      const [head, attr] = segments(node);
      if (head === undefined) return;
      if (!bound.has(head)) free.add(head);
      const collection = bound.get(head);
      if (collection && attr !== undefined) {
        if (!attrs.has(collection)) attrs.set(collection, new Set());
        attrs.get(collection)!.add(attr);
      }
      return;
    }
    if (node.type === "for") {
      const [collection, ...body] = node.children;
      visit(collection!, bound);
      const source = collection!.type === "scopeTraversal" && segments(collection!).length === 1
        ? segments(collection!)[0]!
        : null;
      const inner = new Map(bound);
      if (node.meta?.keyVar) inner.set(String(node.meta.keyVar), null);
      inner.set(String(node.meta?.valVar), source);
      for (const c of body) visit(c, inner);
      return;
    }
    for (const c of node.children) visit(c, bound);
  };
  visit(root, new Map());
  return { free, attrs };
}

function templateProblems(call: TemplateCall, uses: ReturnType<typeof templateUses>): string[] {
  const problems: string[] = [];
  for (const name of uses.free) {
    if (!call.passed.has(name)) problems.push(`${call.path} uses ${name}, which the templatefile call does not pass`);
  }
  for (const name of call.passed.keys()) {
    if (!uses.free.has(name)) problems.push(`templatefile passes ${name}, which ${call.path} never uses`);
  }
  for (const [collection, used] of uses.attrs) {
    const given = call.passed.get(collection);
    if (!given) continue; // not built by a for expression here: nothing to compare
    for (const attr of used) {
      if (!given.has(attr)) {
        problems.push(`${call.path} reads .${attr} on ${collection}, whose objects have no ${attr}`);
      }
    }
  }
  return problems;
}

// A renderer for the subset of HCL templates the inventory uses: literals,
// references, jsonencode() and %{ for } with ~ strip markers. HCL applies a
// strip marker to the adjacent line only (its scanner cuts template text
// into one token per line), which is what keeps the indentation of the line
// after `%{ for ... ~}`.

function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function stripFirstLine(text: string): string {
  const [first = "", ...rest] = splitLines(text);
  return first.trimStart() + rest.join("");
}

function stripLastLine(text: string): string {
  const lines = splitLines(text);
  const last = lines.pop() ?? "";
  return lines.join("") + last.trimEnd();
}

type Scope = Record<string, unknown>;

function lookup(node: AstNode, scope: Scope): unknown {
  let value: unknown = scope;
  for (const seg of segments(node)) {
    if (value === null || typeof value !== "object" || !(seg in value)) {
      throw new Error(`template reference ${String(node.meta?.value)}: no ${seg}`);
    }
    value = (value as Record<string, unknown>)[seg];
  }
  return value;
}

function evaluate(node: AstNode, scope: Scope): unknown {
  switch (node.type) {
    case "scopeTraversal":
      return lookup(node, scope);
    case "literalValue":
      return node.meta?.value;
    case "function":
      if (node.meta?.name === "jsonencode") return JSON.stringify(evaluate(node.children[0]!, scope));
      throw new Error(`renderer: unsupported function ${String(node.meta?.name)}`);
    case "template":
      return renderParts(node.children, scope);
    default:
      throw new Error(`renderer: unsupported node ${node.type}`);
  }
}

function renderParts(parts: AstNode[], scope: Scope): string {
  let out = "";
  let stripNext = false;
  for (let part of parts) {
    // A %{ for } directive arrives wrapped in a join of its iterations.
    if (part.type === "templateJoin" && part.children[0]?.type === "for") part = part.children[0];
    if (part.type === "for") {
      const open = String(part.meta?.openRangeValue ?? "");
      const close = String(part.meta?.closeRangeValue ?? "");
      if (open.startsWith("%{~")) out = stripLastLine(out);
      const [collection, body] = part.children;
      const name = String(part.meta?.valVar);
      for (const item of evaluate(collection!, scope) as unknown[]) {
        let text = renderParts(body!.children, { ...scope, [name]: item });
        if (open.endsWith("~}")) text = stripFirstLine(text);
        if (close.startsWith("%{~")) text = stripLastLine(text);
        out += text;
      }
      stripNext = close.endsWith("~}");
      continue;
    }
    const text = String(evaluate(part, scope));
    out += stripNext ? stripFirstLine(text) : text;
    stripNext = false;
  }
  return out;
}

async function renderTemplate(text: string, vars: Scope): Promise<string> {
  const root = await templateAst(text);
  return renderParts(root.type === "template" ? root.children : [root], vars);
}

// ------------------------------------------------------------------ the real module

/** Variables the brief requires validations for: CIDRs, counts, instance types, service names. */
const MUST_VALIDATE = [
  "ssh_public_key",
  "pki_dir",
  "vpc_cidr",
  "subnet_cidr",
  "allowed_cidrs",
  "admin_cidrs",
  "server_count",
  "connectors",
  "server_instance_type",
  "connector_instance_type",
] as const;

let mod: Module;

describe("terraform module", () => {
  beforeAll(async () => {
    mod = await loadModule(TF_DIR);
  });

  test("every file parses and the expected files exist", () => {
    for (const f of ["versions.tf", "variables.tf", "outputs.tf", "main.tf"]) expect(mod.files.has(f)).toBe(true);
    expect(existsSync(join(TF_DIR, "inventory.tftpl"))).toBe(true);
  });

  test("pins terraform >= 1.5 and the aws provider ~> 5.0", () => {
    const tf = mod.terraform.find((t) => t.required_version !== undefined)!;
    expect(tf.required_version).toBe(">= 1.5");
    const providers = (tf.required_providers as Body[])[0]!;
    expect(providers.aws).toEqual({ source: "hashicorp/aws", version: "~> 5.0" });
  });

  test("every var.X used is declared", () => {
    expect(undeclaredVariables(mod)).toEqual([]);
    expect(varRefs([...mod.files.values()]).size).toBeGreaterThan(10);
  });

  test("every variable has a type and a description; CIDRs, counts, instance types and services are validated", () => {
    expect(variableProblems(mod, MUST_VALIDATE)).toEqual([]);
  });

  test("validations test what the brief asks for", () => {
    const conditions = (name: string) => strings(mod.variables.get(name)!.validation).join("\n");
    expect(conditions("connectors")).toContain("^[A-Za-z0-9][A-Za-z0-9._-]*$");
    expect(conditions("server_count")).toContain(">= 1");
    expect(conditions("connectors")).toContain(">= 1");
    for (const cidrs of ["allowed_cidrs", "admin_cidrs", "vpc_cidr", "subnet_cidr"]) {
      expect(conditions(cidrs)).toContain("cidrnetmask(");
    }
    for (const type of ["server_instance_type", "connector_instance_type"]) {
      expect(conditions(type)).toContain("length(trimspace(");
    }
  });

  test("every output scripts/deploy-aws reads exists", () => {
    const used = outputsUsedBy(readFileSync(DEPLOY_SCRIPT, "utf8"));
    expect([...used].sort()).toEqual(["ansible_inventory", "connector_services", "server_certificate_ips"]);
    expect(missingOutputs(mod, readFileSync(DEPLOY_SCRIPT, "utf8"))).toEqual([]);
  });

  test("outputs include the server public IPs and the rendered inventory", () => {
    expect(String(mod.outputs.get("server_public_ips")?.value)).toContain("aws_eip.server");
    expect(String(mod.outputs.get("ansible_inventory")?.value)).toContain("templatefile(");
  });

  test("the inventory template and its templatefile call agree on every variable and attribute", async () => {
    const calls = await templateCalls(mod);
    expect(calls.map((c) => c.path)).toEqual(["inventory.tftpl"]);
    const uses = templateUses(await templateAst(readFileSync(join(TF_DIR, "inventory.tftpl"), "utf8")));
    expect([...uses.free].sort()).toEqual(["connectors", "pki_dir", "quic_port", "servers", "ssh_user"]);
    // Ansible's own {{ }} expressions pass through as literal text.
    expect(readFileSync(join(TF_DIR, "inventory.tftpl"), "utf8")).toContain(
      '"${pki_dir}/connector-{{ ztna_connector_service }}.pem"',
    );
    expect(templateProblems(calls[0]!, uses)).toEqual([]);
  });

  test("ops ports 9090-9092 open only with var.expose_ops, and then only to var.admin_cidrs", () => {
    expect(opsPortProblems(mod)).toEqual([]);
    // The rules that do open them exist and are gated (not just absent).
    const ops = ingressRules(mod).filter((r) => r.where.endsWith("_ops"));
    expect(ops.length).toBe(2);
    for (const r of ops) expect(String(r.gate)).toContain("var.expose_ops ?");
  });

  test("SSH only from var.admin_cidrs; UDP 4433 from var.allowed_cidrs", () => {
    expect(sshProblems(mod)).toEqual([]);
    const quic = ingressRules(mod).filter((r) => r.protocol === "udp" && portRange(mod, r).toString() === "4433,4433");
    expect(quic.some((r) => sourcesFrom(r, "allowed_cidrs"))).toBe(true);
  });

  test("every aws_instance requires IMDSv2 and encrypts its root volume; servers have an Elastic IP", () => {
    const instances = mod.resources.filter((r) => r.type === "aws_instance").map((r) => r.name);
    expect(instances.sort()).toEqual(["connector", "server"]);
    expect(instanceProblems(mod)).toEqual([]);
    const eip = mod.resources.find((r) => r.type === "aws_eip")!;
    expect(String(eip.body.instance)).toContain("aws_instance.server[");
  });

  test("the network: VPC, one public subnet, internet gateway, route table with a default route", () => {
    const types = mod.resources.map((r) => r.type);
    for (
      const t of [
        "aws_vpc",
        "aws_subnet",
        "aws_internet_gateway",
        "aws_route_table",
        "aws_route",
        "aws_route_table_association",
        "aws_key_pair",
      ]
    ) {
      expect(types).toContain(t);
    }
    expect(types.filter((t) => t === "aws_subnet").length).toBe(1);
    const route = mod.resources.find((r) => r.type === "aws_route")!;
    expect(route.body.destination_cidr_block).toBe("0.0.0.0/0");
  });

  test("two servers by default, and the description says why one cannot roll", () => {
    const count = mod.variables.get("server_count")!;
    expect(count.default).toBe(2);
    expect(String(count.description)).toContain("with 1, every upgrade");
    expect(readFileSync(join(TF_DIR, "example.tfvars"), "utf8")).toMatch(/^server_count = 2$/m);
  });

  test("the subnet's zone offers both instance types; the key pair is created before the network", () => {
    const offerings = mod.data.filter((d) => d.type === "aws_ec2_instance_type_offerings");
    expect(offerings.map((d) => String(JSON.stringify(d.body.filter))).join()).toContain("var.server_instance_type");
    expect(offerings.map((d) => String(JSON.stringify(d.body.filter))).join()).toContain("var.connector_instance_type");
    const subnet = mod.resources.find((r) => r.type === "aws_subnet")!;
    expect(subnet.body.availability_zone).toBe("${local.availability_zone}");
    expect(String(mod.locals.get("usable_zones"))).toContain("setintersection(");
    const vpc = mod.resources.find((r) => r.type === "aws_vpc")!;
    expect(vpc.body.depends_on).toEqual(["${aws_key_pair.admin}"]);
  });

  test("the SSH key's material is checked at plan, beyond its shape", () => {
    const conditions = strings(mod.variables.get("ssh_public_key")!.validation).join("\n");
    expect(conditions).toContain("textdecodebase64(");
    expect(conditions).toContain("== 51"); // an ed25519 blob's length
  });

  test("the lock file pins the AWS provider with hashes for every platform", () => {
    const lock = readFileSync(join(TF_DIR, ".terraform.lock.hcl"), "utf8");
    expect(lock).toContain('provider "registry.terraform.io/hashicorp/aws"');
    expect(lock).toMatch(/version\s+= "5\.\d+\.\d+"/);
    expect(lock).toContain('constraints = "~> 5.0"');
    expect((lock.match(/"zh:[0-9a-f]{64}"/g) ?? []).length).toBeGreaterThanOrEqual(10);
    expect(lock).toMatch(/"h1:[A-Za-z0-9+/]{43}="/);
    // terraform/state uses the same provider at the same version.
    expect(readFileSync(join(TF_DIR, "state", ".terraform.lock.hcl"), "utf8")).toBe(lock);
  });

  test("terraform test plans the module with a mocked AWS provider", () => {
    const tests = readFileSync(join(TF_DIR, "tests", "plan.tftest.hcl"), "utf8");
    expect(tests).toContain('mock_provider "aws"');
    for (
      const run of [
        "two_servers_by_default",
        "first_zone_that_offers_both_instance_types",
        "no_zone_offers_both_types",
        "a_placeholder_key_is_refused_at_plan",
        "the_inventory_points_at_the_pki_dir",
      ]
    ) {
      expect(tests).toContain(`run "${run}"`);
    }
  });

  test("the AMI is Debian 12 from Debian's own account", () => {
    const ami = mod.data.find((d) => d.type === "aws_ami")!;
    expect(ami.body.owners).toEqual(["136693071363"]);
    expect(JSON.stringify(ami.body.filter)).toContain("debian-12-amd64-");
  });
});

describe("terraform/state: the remote state's bucket and lock table", () => {
  let state: Module;
  beforeAll(async () => {
    state = await loadModule(join(TF_DIR, "state"));
  });

  test("a private, versioned, encrypted bucket that Terraform will not destroy, and a LockID table", () => {
    const byType = (t: string) => state.resources.filter((r) => r.type === t);
    const bucket = byType("aws_s3_bucket")[0]!;
    expect(JSON.stringify(bucket.body.lifecycle)).toContain('"prevent_destroy":true');
    expect(JSON.stringify(byType("aws_s3_bucket_versioning")[0]!.body)).toContain('"status":"Enabled"');
    expect(JSON.stringify(byType("aws_s3_bucket_server_side_encryption_configuration")[0]!.body)).toContain("aws:kms");
    const block = byType("aws_s3_bucket_public_access_block")[0]!.body;
    for (const k of ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]) {
      expect(block[k]).toBe(true);
    }
    const table = byType("aws_dynamodb_table")[0]!.body;
    expect(table.hash_key).toBe("LockID");
    expect(JSON.stringify(table.attribute)).toContain('"name":"LockID"');
    expect(variableProblems(state, ["bucket", "region", "lock_table"])).toEqual([]);
    expect(undeclaredVariables(state)).toEqual([]);
  });
});

describe("inventory template", () => {
  const servers = [
    { name: "ztna-server-0", public_ip: "203.0.113.10", private_ip: "10.42.1.10" },
    { name: "ztna-server-1", public_ip: "203.0.113.11", private_ip: "10.42.1.11" },
  ];
  // Values that need YAML quoting: an IPv6 forward, dots and dashes in names.
  const connectors = [
    { name: "ztna-connector-db-0", public_ip: "203.0.113.20", service: "db", forward: "10.42.1.50:5432" },
    { name: "ztna-connector-a.b_c-0", public_ip: "203.0.113.21", service: "a.b_c", forward: "[::1]:53" },
  ];

  test("renders YAML with groups ztna_servers and ztna_connectors and the host vars Ansible reads", async () => {
    const text = await renderTemplate(readFileSync(join(TF_DIR, "inventory.tftpl"), "utf8"), {
      servers,
      connectors,
      ssh_user: "admin",
      quic_port: 4433,
      pki_dir: "/home/op/ztna pki",
    });
    const inv = Bun.YAML.parse(text) as {
      all: {
        vars: Record<string, string>;
        children: Record<string, { hosts: Record<string, Record<string, unknown>> }>;
      };
    };
    // One PKI directory: where scripts/deploy-aws issues, the roles read (names with the roles' prefixes).
    expect(inv.all.vars).toEqual({
      ztna_common_ca_src: "/home/op/ztna pki/ca.pem",
      ztna_server_cert_src: "/home/op/ztna pki/server.pem",
      ztna_server_key_src: "/home/op/ztna pki/server-key.pem",
      ztna_connector_cert_src: "/home/op/ztna pki/connector-{{ ztna_connector_service }}.pem",
      ztna_connector_key_src: "/home/op/ztna pki/connector-{{ ztna_connector_service }}-key.pem",
    });
    const groups = inv.all.children;
    expect(Object.keys(groups).sort()).toEqual(["ztna_connectors", "ztna_servers"]);
    expect(groups.ztna_servers!.hosts).toEqual({
      "ztna-server-0": {
        ansible_host: "203.0.113.10",
        ansible_user: "admin",
        ztna_public_ip: "203.0.113.10",
        ztna_private_ip: "10.42.1.10",
        ztna_server_advertise: "10.42.1.10:4433",
      },
      "ztna-server-1": {
        ansible_host: "203.0.113.11",
        ansible_user: "admin",
        ztna_public_ip: "203.0.113.11",
        ztna_private_ip: "10.42.1.11",
        ztna_server_advertise: "10.42.1.11:4433",
      },
    });
    expect(groups.ztna_connectors!.hosts).toEqual({
      "ztna-connector-db-0": {
        ansible_host: "203.0.113.20",
        ansible_user: "admin",
        ztna_connector_service: "db",
        ztna_connector_forward: "10.42.1.50:5432",
      },
      "ztna-connector-a.b_c-0": {
        ansible_host: "203.0.113.21",
        ansible_user: "admin",
        ztna_connector_service: "a.b_c",
        ztna_connector_forward: "[::1]:53",
      },
    });
  });

  test("the renderer applies strip markers like HCL (line-wise) and rejects what it does not know", async () => {
    const tpl = "a:\n%{ for x in xs ~}\n  - ${x}\n%{ endfor ~}\nb: 1\n";
    expect(await renderTemplate(tpl, { xs: ["p", "q"] })).toBe("a:\n  - p\n  - q\nb: 1\n");
    await expect(renderTemplate("${upper(x)}\n", { x: "a" })).rejects.toThrow("unsupported function upper");
    await expect(renderTemplate("${y}\n", { x: "a" })).rejects.toThrow("no y");
  });
});

// ------------------------------------------------------------------ the checkers catch real mistakes

const BAD_TF = `
variable "undocumented" {
  type = string
}

variable "admin_cidrs" {
  type        = list(string)
  description = "admins"
}

resource "aws_security_group" "open" {
  ingress {
    from_port   = 9000
    to_port     = 9100
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  dynamic "ingress" {
    for_each = var.admin_cidrs
    content {
      from_port   = 9091
      to_port     = 9091
      protocol    = "tcp"
      cidr_blocks = [ingress.value]
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "ops" {
  for_each          = toset(var.admin_cidrs)
  security_group_id = aws_security_group.open.id
  ip_protocol       = "tcp"
  from_port         = 9092
  to_port           = 9092
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.open.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "unknown_port" {
  security_group_id = aws_security_group.open.id
  ip_protocol       = "tcp"
  from_port         = var.some_port
  to_port           = var.some_port
  cidr_ipv4         = "10.0.0.0/8"
}

resource "aws_instance" "weak" {
  ami           = "ami-12345678"
  instance_type = var.undeclared_type

  metadata_options {
    http_tokens = "optional"
  }
}

output "inventory" {
  value = templatefile("\${path.module}/inv.tftpl", {
    hosts  = [for h in aws_instance.weak : { name = h.id }]
    unused = 1
  })
}
`;

const BAD_TEMPLATE = "%{ for h in hosts ~}\n${h.name} ${h.ip} ${missing}\n%{ endfor ~}\n";

describe("checkers on a deliberately broken module", () => {
  let dir: string;
  let bad: Module;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ztna-tf-bad-"));
    writeFileSync(join(dir, "bad.tf"), BAD_TF);
    writeFileSync(join(dir, "inv.tftpl"), BAD_TEMPLATE);
    bad = await loadModule(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("undeclared variables", () => {
    expect(undeclaredVariables(bad).sort()).toEqual([
      "bad.tf: var.some_port is used but never declared",
      "bad.tf: var.undeclared_type is used but never declared",
    ]);
  });

  test("missing description and validation", () => {
    expect(variableProblems(bad, ["admin_cidrs", "server_count"])).toEqual([
      "variable undocumented has no description",
      "variable admin_cidrs has no validation",
      "variable server_count is not declared",
    ]);
  });

  test("an output the script reads but the module lacks", () => {
    expect(missingOutputs(bad, "terraform output -raw ansible_inventory > x\nterraform output -json inventory"))
      .toEqual([
        "output ansible_inventory is read by the script but not declared",
      ]);
  });

  test("ops ports opened without expose_ops or to the world; ports it cannot read", () => {
    expect(opsPortProblems(bad)).toEqual([
      "aws_security_group.open (inline ingress): opens 9000-9100 (ops ports) without depending on var.expose_ops",
      "aws_security_group.open (inline ingress): opens 9000-9100 (ops ports) to sources other than var.admin_cidrs",
      "aws_security_group.open (dynamic ingress): opens 9091-9091 (ops ports) without depending on var.expose_ops",
      "aws_vpc_security_group_ingress_rule.ops: opens 9092-9092 (ops ports) without depending on var.expose_ops",
      "aws_vpc_security_group_ingress_rule.unknown_port: cannot tell which ports it opens",
    ]);
  });

  test("SSH open to the world", () => {
    expect(sshProblems(bad)).toEqual([
      "aws_vpc_security_group_ingress_rule.ssh: opens SSH to sources other than var.admin_cidrs",
    ]);
  });

  test("an instance without IMDSv2 or an encrypted root volume", () => {
    expect(instanceProblems(bad)).toEqual([
      'aws_instance.weak: metadata_options.http_tokens is not "required" (IMDSv2)',
      "aws_instance.weak: root_block_device.encrypted is not true",
    ]);
  });

  test("template and templatefile call out of step", async () => {
    const [call] = await templateCalls(bad);
    const uses = templateUses(await templateAst(BAD_TEMPLATE));
    expect(templateProblems(call!, uses)).toEqual([
      "inv.tftpl uses missing, which the templatefile call does not pass",
      "templatefile passes unused, which inv.tftpl never uses",
      "inv.tftpl reads .ip on hosts, whose objects have no ip",
    ]);
  });

  test("a syntax error is an error, not an empty module", async () => {
    const broken = mkdtempSync(join(tmpdir(), "ztna-tf-syntax-"));
    try {
      writeFileSync(join(broken, "broken.tf"), 'resource "aws_vpc" "x" {\n  cidr_block = \n');
      await expect(loadModule(broken)).rejects.toThrow();
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ scripts/deploy-aws

/** A real Ed25519 public key line (the script checks keys as AWS will). */
function ed25519Line(): string {
  const jwk = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }) as { x: string };
  const str = (b: Uint8Array) => {
    const out = new Uint8Array(4 + b.length);
    new DataView(out.buffer).setUint32(0, b.length);
    out.set(b, 4);
    return out;
  };
  const blob = Buffer.concat([str(new TextEncoder().encode("ssh-ed25519")), str(Buffer.from(jwk.x, "base64url"))]);
  return `ssh-ed25519 ${blob.toString("base64")} admin@example`;
}
const GOOD_KEY = ed25519Line();
// The old example.tfvars placeholder: the right shape, but no key.
const PLACEHOLDER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyReplaceMeWithYourOwnKeyMaterial0 you@laptop";

// Stub tools: each logs "name [cwd] args" and does just enough for the script
// to go on (terraform prints outputs and the key, npm "builds" dist/ztna,
// that ztna "issues" certificate files). The key check is the real one.
const STUB_TERRAFORM = `echo "terraform [$(pwd)] $*" >> "$STUB_LOG"
case " $* " in
  *" apply "*) [ -z "$STUB_FAIL_APPLY" ] || exit 1 ;;
  *" console "*) cat > /dev/null; printf '"%s"\\n' "$STUB_KEY" ;;
  *" ansible_inventory "*) printf 'all:\\n  children: {}\\n' ;;
  *" server_certificate_ips "*) printf '%s' "\${STUB_IPS:-203.0.113.10,10.42.1.10}" ;;
  *" connector_services "*) printf 'db,dns' ;;
esac
`;

const STUB_ZTNA = `[ "$1" = version ] && exit 0
echo "ztna [$(pwd)] $*" >> "$STUB_LOG"
out=; role=; service=
while [ $# -gt 0 ]; do
  case "$1" in --out) out=$2; shift ;; --role) role=$2; shift ;; --service) service=$2; shift ;; esac
  shift
done
case "$role" in
  "") : > "$out/ca.pem" ;;
  server) : > "$out/server.pem" ;;
  connector) : > "$out/connector-$service.pem" ;;
esac
`;

const STUB_NPM = `echo "npm [$(pwd)] $*" >> "$STUB_LOG"
mkdir -p dist && cp "$STUB_ZTNA" dist/ztna && chmod +x dist/ztna
`;

const STUB_LOGGER = `echo "$(basename "$0") [$(pwd)] $*" >> "$STUB_LOG"\n`;

/** A git checkout of the repository layout the script needs, with stub tools on a PATH of their own. */
function deployFixture() {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "ztna-deploy-")));
  for (const d of ["scripts", "terraform", "ansible", "bin", "sys", "node_modules/.bin"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync(DEPLOY_SCRIPT, join(root, "scripts", "deploy-aws"));
  copyFileSync(join(ROOT, "scripts", "check-ssh-key.ts"), join(root, "scripts", "check-ssh-key.ts"));
  symlinkSync(process.execPath, join(root, "node_modules", ".bin", "bun"));
  writeFileSync(join(root, "ansible", "site.yml"), "---\n");
  writeFileSync(join(root, "prod.tfvars"), 'admin_cidrs = ["198.51.100.7/32"]\n');
  // The repository's own ignore rules decide what a deploy leaves untracked.
  copyFileSync(join(ROOT, ".gitignore"), join(root, ".gitignore"));
  copyFileSync(join(TF_DIR, ".gitignore"), join(root, "terraform", ".gitignore"));
  writeFileSync(
    join(root, ".gitignore"),
    readFileSync(join(root, ".gitignore"), "utf8") + "bin/\nsys/\nztna-stub\ncalls.log\nprod.tfvars\n",
  );
  const stubs: Record<string, string> = {
    terraform: STUB_TERRAFORM,
    npm: STUB_NPM,
    ansible: STUB_LOGGER,
    "ansible-playbook": STUB_LOGGER,
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(root, "bin", name), `#!/bin/sh\n${body}`, { mode: 0o755 });
  }
  writeFileSync(join(root, "ztna-stub"), `#!/bin/sh\n${STUB_ZTNA}`, { mode: 0o755 });
  // Only the stubs and the few system tools the script and stubs use are on
  // PATH, so a real terraform or ansible on this machine is never called.
  for (
    const tool of ["basename", "dirname", "mktemp", "chmod", "mv", "rm", "cat", "mkdir", "cp", "git", "head", "printf"]
  ) {
    const found = Bun.which(tool);
    if (found) symlinkSync(found, join(root, "sys", tool));
  }
  const gitEnv = {
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example",
    HOME: root,
  };
  const git = (...args: string[]) => {
    const r = Bun.spawnSync(["git", ...args], {
      cwd: root,
      env: { ...process.env, ...gitEnv },
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  };
  git("init", "-q");
  git("add", "-A");
  git("commit", "-qm", "fixture");
  const log = join(root, "calls.log");
  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = Bun.spawnSync([Bun.which("bash")!, join(root, "scripts", "deploy-aws"), ...args], {
      cwd: root,
      env: {
        PATH: `${join(root, "bin")}:${join(root, "sys")}`,
        // Bun keeps a cache in HOME: somewhere git ignores, like the user's home outside the tree.
        HOME: join(root, "sys"),
        STUB_LOG: log,
        STUB_ZTNA: join(root, "ztna-stub"),
        STUB_KEY: GOOD_KEY,
        ...env,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  /** Calls logged since the last read. */
  const calls = () => {
    const lines = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
    rmSync(log, { force: true });
    return lines.filter((l) => l !== "");
  };
  return { root, run, calls, git, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

describe("scripts/deploy-aws", () => {
  test("build, init, key check, apply with the PKI dir and the caller's args, inventory, certificates, SSH, playbook", () => {
    const fx = deployFixture();
    try {
      const r = fx.run(["-var-file=prod.tfvars", "-auto-approve", "--", "--limit", "ztna_connectors"]);
      expect(r.stderr).not.toContain("deploy-aws:");
      expect(r.code).toBe(0);
      const R = fx.root;
      const tf = `terraform [${R}] -chdir=${R}/terraform`;
      const pki = `${R}/ansible/pki`;
      const inv = `${R}/ansible/inventory.aws.yml`;
      expect(fx.calls()).toEqual([
        `npm [${R}] run build`,
        `${tf} init -input=false`,
        // Only the variable arguments reach the console that reads the key.
        `${tf} console -var-file=${R}/prod.tfvars`,
        // A var file that exists from the caller's directory is made absolute: terraform runs in terraform/.
        `${tf} apply -var=pki_dir=${pki} -var-file=${R}/prod.tfvars -auto-approve`,
        `${tf} output -raw ansible_inventory`,
        `ztna [${R}] certs init --out ${pki}`,
        `${tf} output -raw server_certificate_ips`,
        `ztna [${R}] certs issue --role server --ip 203.0.113.10 --ip 10.42.1.10 --ca-dir ${pki} --out ${pki} --force`,
        `${tf} output -raw connector_services`,
        `ztna [${R}] certs issue --role connector --service db --ca-dir ${pki} --out ${pki}`,
        `ztna [${R}] certs issue --role connector --service dns --ca-dir ${pki} --out ${pki}`,
        `ansible [${R}/ansible] all -i ${inv} -m ansible.builtin.wait_for_connection -a timeout=300`,
        `ansible-playbook [${R}/ansible] -i ${inv} ${R}/ansible/site.yml --limit ztna_connectors`,
      ]);
      expect(r.stdout).toContain("ssh_public_key: ssh-ed25519 (256 bits), SHA256:");
      expect(readFileSync(inv, "utf8")).toBe("all:\n  children: {}\n");
      // The CA key's directory ignores itself, whatever the repository's .gitignore says.
      expect(readFileSync(join(pki, ".gitignore"), "utf8")).toBe("*\n");
    } finally {
      fx.cleanup();
    }
  });

  test("every run builds (the tree stays clean); a second one issues nothing; new server addresses reissue only the server certificate", () => {
    const fx = deployFixture();
    try {
      expect(fx.run([]).code).toBe(0);
      fx.calls();
      const again = fx.run([]);
      expect(again.stderr).not.toContain("uncommitted");
      expect(again.code).toBe(0);
      const calls = fx.calls();
      expect(calls.filter((c) => c.startsWith("npm"))).toEqual([`npm [${fx.root}] run build`]);
      expect(calls.filter((c) => c.startsWith("ztna"))).toEqual([]);
      expect(
        fx.run([], { STUB_IPS: "203.0.113.10,203.0.113.11,10.42.1.10,10.42.1.11", ZTNA_SERVER_DNS: "relay.example" })
          .code,
      ).toBe(0);
      expect(fx.calls().filter((c) => c.startsWith("ztna"))).toEqual([
        `ztna [${fx.root}] certs issue --role server --ip 203.0.113.10 --ip 203.0.113.11 --ip 10.42.1.10 --ip 10.42.1.11 --dns relay.example --ca-dir ${fx.root}/ansible/pki --out ${fx.root}/ansible/pki --force`,
      ]);
    } finally {
      fx.cleanup();
    }
  });

  test("uncommitted changes are refused before anything runs, unless --allow-dirty (or ZTNA_ALLOW_DIRTY=1)", () => {
    const fx = deployFixture();
    try {
      writeFileSync(join(fx.root, "ansible", "site.yml"), "---\n# edited\n");
      const refused = fx.run(["-auto-approve"]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("M ansible/site.yml");
      expect(refused.stderr).toContain("uncommitted changes");
      expect(fx.calls()).toEqual([]);
      const allowed = fx.run(["--allow-dirty", "-auto-approve"]);
      expect(allowed.code).toBe(0);
      const calls = fx.calls();
      expect(calls[0]).toBe(`npm [${fx.root}] run build`);
      // --allow-dirty is the script's, not terraform's.
      expect(calls.find((c) => c.includes(" apply "))).toEndWith(
        "apply -var=pki_dir=" + `${fx.root}/ansible/pki -auto-approve`,
      );
      expect(fx.run([], { ZTNA_ALLOW_DIRTY: "1" }).code).toBe(0);
    } finally {
      fx.cleanup();
    }
  });

  test("a key that is no key stops the run before terraform apply", () => {
    const fx = deployFixture();
    try {
      const r = fx.run([], { STUB_KEY: PLACEHOLDER_KEY });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("ssh_public_key: an ssh-ed25519 key holds exactly 32 bytes");
      expect(r.stderr).toContain("before anything is created");
      const calls = fx.calls();
      expect(calls.some((c) => c.includes(" apply "))).toBe(false);
      expect(calls.at(-1)).toContain(" console");
      expect(existsSync(join(fx.root, "ansible", "inventory.aws.yml"))).toBe(false);
    } finally {
      fx.cleanup();
    }
  });

  test("ZTNA_TF_STATE_BUCKET keeps the state in S3 with a DynamoDB lock; unset afterwards, the run refuses", () => {
    const fx = deployFixture();
    try {
      writeFileSync(join(fx.root, "terraform", "terraform.tfstate"), "{}\n");
      const env = {
        ZTNA_TF_STATE_BUCKET: "acme-ztna-state",
        ZTNA_TF_STATE_REGION: "eu-west-1",
        ZTNA_TF_LOCK_TABLE: "locks",
      };
      expect(fx.run([], env).code).toBe(0);
      const init = fx.calls().find((c) => c.includes(" init "))!;
      expect(init).toEndWith(
        "init -input=false -migrate-state -force-copy -backend-config=bucket=acme-ztna-state -backend-config=key=ztna/terraform.tfstate " +
          "-backend-config=region=eu-west-1 -backend-config=dynamodb_table=locks -backend-config=encrypt=true",
      );
      expect(readFileSync(join(fx.root, "terraform", "backend_override.tf"), "utf8")).toContain('backend "s3" {}');
      // The override file is git-ignored: the tree stays clean for the next run.
      expect(fx.run([], env).code).toBe(0);
      expect(fx.calls().find((c) => c.includes(" init "))).not.toContain("-migrate-state");
      const unset = fx.run([]);
      expect(unset.code).not.toBe(0);
      expect(unset.stderr).toContain("ZTNA_TF_STATE_BUCKET is not set");
      expect(fx.calls().filter((c) => c.startsWith("terraform"))).toEqual([]);
      const noRegion = fx.run([], { ZTNA_TF_STATE_BUCKET: "b", AWS_REGION: "" });
      expect(noRegion.stderr).toContain("ZTNA_TF_STATE_REGION");
    } finally {
      fx.cleanup();
    }
  });

  test("ZTNA_PKI_DIR: certificates issued there, and the inventory (var.pki_dir) points there", () => {
    const fx = deployFixture();
    const pki = mkdtempSync(join(tmpdir(), "ztna-pki-"));
    try {
      expect(fx.run(["-auto-approve"], { ZTNA_PKI_DIR: pki }).code).toBe(0);
      const calls = fx.calls();
      expect(calls.find((c) => c.includes(" apply "))).toEndWith(`apply -var=pki_dir=${pki} -auto-approve`);
      expect(calls.filter((c) => c.startsWith("ztna"))[0]).toBe(`ztna [${fx.root}] certs init --out ${pki}`);
      expect(existsSync(join(pki, "ca.pem"))).toBe(true);
      expect(existsSync(join(fx.root, "ansible", "pki"))).toBe(false);
    } finally {
      fx.cleanup();
      rmSync(pki, { recursive: true, force: true });
    }
  });

  test("a var file only terraform/ has is left for terraform; ZTNA_SKIP_PKI issues nothing", () => {
    const fx = deployFixture();
    try {
      expect(fx.run(["-var-file", "only-in-terraform.tfvars"], { ZTNA_SKIP_PKI: "1" }).code).toBe(0);
      const calls = fx.calls();
      expect(calls.find((c) => c.includes(" console"))).toEndWith("console -var-file only-in-terraform.tfvars");
      expect(calls.find((c) => c.includes(" apply "))).toEndWith(
        "apply -var=pki_dir=" + `${fx.root}/ansible/pki -var-file only-in-terraform.tfvars`,
      );
      expect(calls.filter((c) => c.startsWith("ztna"))).toEqual([]);
      expect(existsSync(join(fx.root, "ansible", "pki"))).toBe(false);
    } finally {
      fx.cleanup();
    }
  });

  test("a failed apply stops before the inventory, certificates and Ansible", () => {
    const fx = deployFixture();
    try {
      expect(fx.run([], { STUB_FAIL_APPLY: "1" }).code).not.toBe(0);
      expect(fx.calls().map((c) => c.split(" ")[0])).toEqual(["npm", "terraform", "terraform", "terraform"]);
      expect(existsSync(join(fx.root, "ansible", "inventory.aws.yml"))).toBe(false);
      expect(existsSync(join(fx.root, "ansible", "pki"))).toBe(false);
    } finally {
      fx.cleanup();
    }
  });

  test("missing Ansible is reported before anything runs", () => {
    const fx = deployFixture();
    try {
      rmSync(join(fx.root, "bin", "ansible-playbook"));
      const r = fx.run([]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("ansible-playbook not found");
      expect(fx.calls()).toEqual([]);
    } finally {
      fx.cleanup();
    }
  });

  test("--help prints usage and runs nothing", () => {
    const fx = deployFixture();
    try {
      const r = fx.run(["--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("usage: scripts/deploy-aws [--allow-dirty]");
      expect(fx.calls()).toEqual([]);
    } finally {
      fx.cleanup();
    }
  });
});

// ------------------------------------------------------------------ workflows and Containerfile

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

interface Job {
  needs?: string | string[];
  permissions?: Record<string, string>;
  steps: Step[];
}

interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

function readWorkflow(name: string): Workflow {
  const doc = Bun.YAML.parse(readFileSync(join(ROOT, ".github", "workflows", name), "utf8")) as Record<string, unknown>;
  // YAML 1.1 readers (GitHub's included) may read the key `on` as true.
  return { ...(doc as unknown as Workflow), on: (doc.on ?? doc.true) as Record<string, unknown> };
}

const runs = (job: Job) => job.steps.map((s) => s.run ?? "").join("\n");
const uses = (job: Job) => job.steps.map((s) => s.uses ?? "");

describe("workflows", () => {
  test("test.yml: on push, pull_request and as the release's first stage, read-only, every check CI relies on", () => {
    const wf = readWorkflow("test.yml");
    expect(Object.keys(wf.on).sort()).toEqual(["pull_request", "push", "workflow_call"]);
    expect(wf.permissions).toEqual({ contents: "read" });
    const jobs = Object.values(wf.jobs);
    for (const job of jobs) {
      expect(job.permissions).toBeUndefined();
      expect(uses(job)[0]).toStartWith("actions/checkout@");
    }
    const all = jobs.map(runs).join("\n");
    for (
      const cmd of [
        "npm ci",
        "npm run typecheck",
        "npm test",
        "scripts/ansible-test.sh",
        "scripts/check-observability.sh",
        "scripts/deno-check.sh",
      ]
    ) {
      expect(all).toContain(cmd);
    }
    const withNode = jobs.filter((j) => uses(j).some((u) => u.startsWith("actions/setup-node@")));
    for (const j of withNode) {
      const setup = j.steps.find((s) => s.uses?.startsWith("actions/setup-node@"))!;
      expect(String(setup.with?.["node-version"])).toBe("20");
    }
    expect(runs(wf.jobs.test!)).toContain("npm run typecheck");
    expect(runs(wf.jobs.observability!)).toMatch(/apt-get install[^\n]*\bprometheus\b/);
    const tf = wf.jobs.terraform!;
    expect(uses(tf).some((u) => u.startsWith("hashicorp/setup-terraform@"))).toBe(true);
    for (
      const cmd of [
        "terraform fmt -check -recursive",
        "terraform init -backend=false",
        "terraform validate",
        "terraform test",
      ]
    ) {
      expect(runs(tf)).toContain(cmd);
    }
  });

  test("test.yml: the Ansible job uses the tested ansible-lint, has the test's tools, and is callable by the release", () => {
    const wf = readWorkflow("test.yml");
    expect(Object.keys(wf.on)).toContain("workflow_call");
    const job = wf.jobs.ansible!;
    expect(runs(job)).toContain("pip install -r ansible/requirements-ci.txt");
    const pins = readFileSync(join(ROOT, "ansible", "requirements-ci.txt"), "utf8");
    expect(pins).toMatch(/^ansible-lint==\d+\.\d+\.\d+$/m);
    expect(pins).toMatch(/^ansible-core==\d+\.\d+\.\d+$/m);
    expect(runs(job)).toMatch(/apt-get install[^\n]*\bstrace\b/);
    expect(runs(job)).toMatch(/apt-get install[^\n]*\bsystemd-container\b[^\n]*\bdebootstrap\b/);
    expect(runs(job)).toContain("sudo -E");
  });

  test("release.yml: on v* tags; binary, checksums, image on ghcr.io, GitHub release; write access only where needed", () => {
    const wf = readWorkflow("release.yml");
    expect(wf.on).toEqual({ push: { tags: ["v*"] } });
    expect(wf.permissions).toEqual({ contents: "read" });
    const { test: tests, build, image, release } = wf.jobs;
    // Nothing is built, let alone published, before the test workflow passed on this commit.
    expect((tests as unknown as { uses: string }).uses).toBe("./.github/workflows/test.yml");
    expect([build!.needs].flat()).toEqual(["test"]);
    expect(runs(build!)).toContain("npm ci");
    expect(runs(build!)).toContain("npm run build");
    expect(runs(build!)).toContain("sha256sum");
    expect(build!.permissions).toBeUndefined();

    expect(image!.permissions).toEqual({ contents: "read", packages: "write" });
    const push = image!.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"))!;
    expect(push.with?.file).toBe("Containerfile");
    expect(push.with?.push).toBe(true);
    expect(image!.steps.find((s) => s.uses?.startsWith("docker/login-action@"))?.with?.registry).toBe("ghcr.io");

    expect(release!.permissions).toEqual({ contents: "write" });
    const gh = release!.steps.find((s) => s.uses?.startsWith("softprops/action-gh-release@"))!;
    expect(String(gh.with?.files)).toContain("SHA256SUMS");
    for (const job of [image!, release!]) expect([job.needs].flat()).toContain("build");
  });
});

describe("Containerfile", () => {
  const text = readFileSync(join(ROOT, "Containerfile"), "utf8");
  const instruction = (name: string) =>
    text.match(new RegExp(`^${name}\\s+(.+)$`, "gm"))?.map((l) => l.replace(/^\w+\s+/, "")) ?? [];

  test("debian:12-slim, the binary, a non-root user, ports, health check, entry point", () => {
    expect(instruction("FROM").at(-1)).toBe("debian:12-slim");
    expect(text).toMatch(/^COPY\s+(--\S+\s+)*dist\/ztna\s+\/usr\/local\/bin\/ztna$/m);
    expect(instruction("USER").at(-1)).toBe("ztna");
    expect(instruction("EXPOSE").join(" ").split(/\s+/).sort()).toEqual(["4433/udp", "9090"]);
    // The check calls /healthz on the ops port; the URL is an ENV so a connector's image can point it at 9091.
    expect(text).toMatch(/^HEALTHCHECK .* CMD curl -fsS [^\n]*"\$HEALTHCHECK_URL"/m);
    expect(instruction("ENV")).toContain("HEALTHCHECK_URL=http://127.0.0.1:9090/healthz");
    expect(JSON.parse(instruction("ENTRYPOINT")[0]!)).toEqual(["/usr/local/bin/ztna"]);
    expect(JSON.parse(instruction("CMD").at(-1)!)).toEqual([
      "server",
      "--listen",
      "0.0.0.0:4433",
      "--ops",
      "0.0.0.0:9090",
      "--state-dir",
      "/var/lib/ztna",
    ]);
  });
});
