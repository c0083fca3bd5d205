/**
 * The wire format of the bench's tiny key-value server (TCP request/response
 * rows): a request is the line `GET <key>\n`; the answer is the value's length
 * in decimal, `\n`, then the value (`-1\n` for a missing key). Readers are
 * incremental: TCP may split or join messages anywhere.
 */

const NL = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeGet(key: string): Uint8Array {
  return encoder.encode(`GET ${key}\n`);
}

export function encodeValue(value: Uint8Array | null): Uint8Array {
  if (value === null) return encoder.encode("-1\n");
  const head = encoder.encode(`${value.length}\n`);
  const out = new Uint8Array(head.length + value.length);
  out.set(head);
  out.set(value, head.length);
  return out;
}

const MAX_LINE = 256;

/** Splits a byte stream into requested keys; throws on a line that is not a GET. */
export function createRequestReader() {
  let line = "";
  return {
    push(chunk: Uint8Array): string[] {
      const keys: string[] = [];
      let start = 0;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== NL) continue;
        line += decoder.decode(chunk.subarray(start, i));
        start = i + 1;
        if (!line.startsWith("GET ")) throw new Error(`not a GET request: ${JSON.stringify(line.slice(0, 40))}`);
        keys.push(line.slice(4));
        line = "";
      }
      line += decoder.decode(chunk.subarray(start));
      if (line.length > MAX_LINE) throw new Error("request line too long");
      return keys;
    },
  };
}

/** Counts complete answers in a byte stream without copying values. */
export function createResponseReader() {
  let inHeader = true;
  let length = 0;
  let negative = false;
  let bodyLeft = 0;
  return {
    /** Answers completed by this chunk (missing keys included). */
    push(chunk: Uint8Array): number {
      let done = 0;
      let i = 0;
      while (i < chunk.length) {
        if (!inHeader) {
          const take = Math.min(bodyLeft, chunk.length - i);
          bodyLeft -= take;
          i += take;
          if (bodyLeft === 0) {
            inHeader = true;
            done++;
          }
          continue;
        }
        const c = chunk[i++]!;
        if (c === NL) {
          if (negative || length === 0) done++;
          else {
            inHeader = false;
            bodyLeft = length;
          }
          length = 0;
          negative = false;
        } else if (c === 0x2d) negative = true;
        else if (c >= 0x30 && c <= 0x39) length = length * 10 + (c - 0x30);
        else throw new Error(`bad answer header byte ${c}`);
      }
      return done;
    },
  };
}
