/**
 * The TCP floor of a relay chain of Bun processes: each accepted connection
 * is piped to `--next` and back, with node:net as the programs use it (no
 * delay, backpressure by pipe). Reports {"port"} once listening; exits when
 * stdin closes.
 */
import net from "node:net";
import { flag, onCommands, parseHostPort, report } from "../lib/child-io.ts";

const next = parseHostPort(flag("next", ""));
// Half-open both ways: an upload ends with the client's FIN and the answer still comes back.
const server = net.createServer({ allowHalfOpen: true }, (client) => {
  client.setNoDelay(true);
  const upstream = net.connect({ host: next.host, port: next.port, noDelay: true, allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", end).on("close", end);
  upstream.on("error", end).on("close", end);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
report({ port: (server.address() as net.AddressInfo).port });
onCommands(() => {});
