/**
 * The few libc calls the runtime adapters need and Bun does not offer
 * (socket options, the kernel's per-socket drop counter, giving freed heap
 * back, running the program again with another environment), through
 * `bun:ffi`, loaded once. Null wherever that is not possible
 * (not Bun, not Linux, no libc.so.6): every caller then does without.
 */

export interface Libc {
  /** setsockopt(2) with `value` as the option's bytes; 0 on success. */
  setsockopt(fd: number, level: number, name: number, value: ArrayBufferView, len: number): number;
  /** getsockopt(2); `len` holds the buffer's size in and the option's length out. 0 on success. */
  getsockopt(fd: number, level: number, name: number, value: ArrayBufferView, len: Uint32Array): number;
  /** malloc_trim(3): hands free pages of glibc's heaps back to the kernel. */
  mallocTrim(): void;
  /**
   * execve(2): replaces this process's image (same pid, same open files).
   * Returns only on failure, with -1.
   */
  execve(path: string, argv: string[], envp: string[]): number;
  /** The address of a view's bytes, for structures that point at other memory. */
  ptr(value: ArrayBufferView): number;
  /** sendmmsg(2): `msgvec` is the address of `count` struct mmsghdr. Messages sent, or -1 (see errno). */
  sendmmsg(fd: number, msgvec: number, count: number): number;
  /** errno as the last failed call left it. */
  errno(): number;
}

declare const Bun: unknown;

let libc: Libc | null | undefined;

export function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (typeof Bun === "undefined" || process.platform !== "linux") return null;
  try {
    const ffi = require("bun:ffi");
    const { symbols } = ffi.dlopen("libc.so.6", {
      setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
      getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
      malloc_trim: { args: ["u64"], returns: "i32" },
      execve: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
      sendmmsg: { args: ["i32", "ptr", "u32", "i32"], returns: "i32" },
      __errno_location: { args: [], returns: "ptr" },
    });
    libc = {
      setsockopt: (fd, level, name, value, len) => symbols.setsockopt(fd, level, name, ffi.ptr(value), len),
      getsockopt: (fd, level, name, value, len) => symbols.getsockopt(fd, level, name, ffi.ptr(value), ffi.ptr(len)),
      mallocTrim: () => void symbols.malloc_trim(0),
      execve: (path, argv, envp) => {
        // Everything the pointers point at stays referenced from `keep` until the call returns.
        const keep: ArrayBufferView[] = [];
        const held = <T extends ArrayBufferView>(view: T): T => (keep.push(view), view);
        const cString = (text: string) => ffi.ptr(held(new TextEncoder().encode(`${text}\0`)));
        // NULL-terminated arrays of pointers to NUL-terminated strings.
        const pointers = (list: string[]) =>
          ffi.ptr(held(BigUint64Array.from([...list.map((t) => BigInt(cString(t))), 0n])));
        return symbols.execve(cString(path), pointers(argv), pointers(envp));
      },
      ptr: (value) => ffi.ptr(value),
      sendmmsg: (fd, msgvec, count) => symbols.sendmmsg(fd, msgvec, count, 0),
      errno: () => ffi.read.i32(symbols.__errno_location(), 0),
    };
  } catch {
    libc = null;
  }
  return libc;
}
