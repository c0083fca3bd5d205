/** A TCP port free right now on loopback (for tools like ssh that cannot take port 0). */
import net from "node:net";

export async function freeTcpPort(host = "127.0.0.1"): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls until a TCP connection to host:port succeeds; false at the deadline or once `gaveUp()`. */
export async function waitForTcp(
  host: string,
  port: number,
  timeoutMs: number,
  gaveUp = () => false,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && !gaveUp()) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return true;
    await Bun.sleep(50);
  }
  return false;
}
