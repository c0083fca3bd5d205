/**
 * What the impairment proxy does to one direction of traffic: the settings, a
 * seeded random source, and the decision for each packet. Pure, so it is
 * tested without sockets.
 */

export interface Impairment {
  /** Probability (0..1) that a packet is dropped. */
  loss: number;
  /**
   * Probability (0..1) that a packet is held back until the next packet of
   * the same direction has passed, or at most `reorderHoldMs`.
   */
  reorder: number;
  reorderHoldMs: number;
  /** Probability (0..1) that a packet is sent twice. */
  duplicate: number;
  /** Fixed one-way delay. */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs): packets may overtake each other, as on a real path. */
  jitterMs: number;
  /**
   * Largest UDP payload that passes (0: any). Larger ones are dropped, as on
   * a path whose MTU is smaller than the endpoints' (a path-MTU black hole).
   */
  maxPayload: number;
}

export type Direction = "up" | "down";

export const CLEAN: Impairment = Object.freeze({
  loss: 0,
  reorder: 0,
  reorderHoldMs: 5,
  duplicate: 0,
  delayMs: 0,
  jitterMs: 0,
  maxPayload: 0,
});

/** Checks a partial update; returns the reason it is invalid, or undefined. */
export function invalidImpairment(update: Record<string, unknown>): string | undefined {
  for (const [key, value] of Object.entries(update)) {
    if (!(key in CLEAN)) return `unknown setting ${JSON.stringify(key)}`;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      return `${key} must be a finite number >= 0 (got ${JSON.stringify(value)})`;
    }
    const probability = key === "loss" || key === "reorder" || key === "duplicate";
    if (probability && value > 1) return `${key} is a probability between 0 and 1 (got ${value})`;
    if (key === "maxPayload") {
      if (value > 65_535 || !Number.isInteger(value)) {
        return `maxPayload must be an integer of at most 65535 bytes (got ${value})`;
      }
    } else if (!probability && value > 60_000) return `${key} must be at most 60000 ms (got ${value})`;
  }
  return undefined;
}

/** A small seeded PRNG (xorshift32): the same seed gives the same impairments. */
export function seededRandom(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

/** What happens to one packet. */
export interface Verdict {
  drop: boolean;
  /** Hold until the next packet of the direction passes (or the hold time ends). */
  hold: boolean;
  copies: 1 | 2;
  /** Milliseconds from now until it leaves (delay + jitter). */
  delayMs: number;
}

/**
 * Decides a packet's fate. Every probability draws from `random` in a fixed
 * order whether or not it applies, so changing one setting does not shift
 * the sequence the others see.
 */
export function decide(settings: Impairment, random: () => number): Verdict {
  const lossDraw = random();
  const reorderDraw = random();
  const duplicateDraw = random();
  const jitterDraw = random();
  return {
    drop: lossDraw < settings.loss,
    hold: reorderDraw < settings.reorder,
    copies: duplicateDraw < settings.duplicate ? 2 : 1,
    delayMs: settings.delayMs + jitterDraw * settings.jitterMs,
  };
}
