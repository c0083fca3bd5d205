// Hot-path metrics as plain number fields.
//
// prom-client's `counter.labels(...).inc()` hashes the label object on every
// call; the relay counts every datagram, so instead each labelled series is a
// tiny cell whose `inc` is a single field add. prom-client only sees the cells
// when scraped, through the metric's `collect()` hook.
import { Counter, Gauge } from "./prom.ts";
import type { Registry } from "prom-client";

/** Label name → label value for one series. */
export type Labels = Record<string, string>;

export class CounterCell {
  value = 0;
  /** `n` must be ≥ 0 (not checked here: this is the hot path). */
  inc(n = 1): void {
    this.value += n;
  }
}

export class GaugeCell {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export interface Family<L extends Labels, C> {
  readonly name: string;
  /** The cell for these labels, created on first use. Cache it on hot paths. */
  child(labels: L): C;
  /** Drop a series (e.g. a service or server that went away). */
  remove(labels: L): void;
}

export type CounterFamily<L extends Labels> = Family<L, CounterCell>;
export type GaugeFamily<L extends Labels> = Family<L, GaugeCell>;

interface Series<L, C> {
  labels: L;
  cell: C;
}

function makeFamily<L extends Labels, C>(
  name: string,
  labelNames: readonly (keyof L & string)[],
  make: () => C,
): { family: Family<L, C>; series: Map<string, Series<L, C>> } {
  const series = new Map<string, Series<L, C>>();
  const keyOf = (labels: L): string => {
    let key = "";
    for (const n of labelNames) {
      const v = labels[n];
      if (typeof v !== "string") throw new Error(`${name}: missing label "${n}"`);
      key += v + "\u0000";
    }
    return key;
  };
  const family: Family<L, C> = {
    name,
    child(labels) {
      const key = keyOf(labels);
      let s = series.get(key);
      if (s === undefined) {
        // Copy only the declared names so a caller's extra keys or later
        // mutation cannot leak into the exposition.
        const own = {} as L;
        for (const n of labelNames) (own as Labels)[n] = labels[n] as string;
        s = { labels: own, cell: make() };
        series.set(key, s);
      }
      return s.cell;
    },
    remove(labels) {
      series.delete(keyOf(labels));
    },
  };
  return { family, series };
}

export function counterFamily<L extends Labels>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly (keyof L & string)[],
): CounterFamily<L> {
  const { family, series } = makeFamily<L, CounterCell>(name, labelNames, () => new CounterCell());
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, cell } of series.values()) {
        // A negative value would make prom-client throw and fail the whole
        // scrape; skip the bad series instead.
        if (cell.value >= 0) this.inc(labels, cell.value);
      }
    },
  });
  return family;
}

export function gaugeFamily<L extends Labels>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly (keyof L & string)[],
): GaugeFamily<L> {
  const { family, series } = makeFamily<L, GaugeCell>(name, labelNames, () => new GaugeCell());
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, cell } of series.values()) this.set(labels, cell.value);
    },
  });
  return family;
}

/** An unlabelled counter: just the cell. */
export function counter(registry: Registry, name: string, help: string): CounterCell {
  return counterFamily<Record<never, string>>(registry, name, help, []).child({});
}

/** An unlabelled gauge: just the cell. */
export function gauge(registry: Registry, name: string, help: string): GaugeCell {
  return gaugeFamily<Record<never, string>>(registry, name, help, []).child({});
}

/** A gauge whose value is computed at scrape time (e.g. uptime). */
export function computedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/**
 * Create these series up front so they are exported (at 0) from the first
 * scrape rather than appearing on first use; returns the family.
 */
export function preset<L extends Labels, C>(family: Family<L, C>, series: readonly L[]): Family<L, C> {
  for (const labels of series) family.child(labels);
  return family;
}

/** `[{ [name]: v } for v in values]`, for `preset` over one closed label. */
export function each<K extends string, V extends string>(name: K, values: readonly V[]): Record<K, V>[] {
  return values.map((v) => ({ [name]: v }) as Record<K, V>);
}
