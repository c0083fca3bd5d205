/**
 * Prefix views of one reused buffer, created once per length and then reused,
 * so the hot path can hand `buf[0..len)` to quiche without allocating a view per packet.
 */
export interface BufferViews {
  readonly buffer: Uint8Array;
  view(length: number): Uint8Array;
}

export function createBufferViews(size: number): BufferViews {
  const buffer = new Uint8Array(size);
  const views: (Uint8Array | undefined)[] = new Array(size + 1);
  return {
    buffer,
    view(length) {
      return (views[length] ??= buffer.subarray(0, length));
    },
  };
}
