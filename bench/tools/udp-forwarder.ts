/**
 * The floor a relay chain of Bun processes can reach: a forwarder that does
 * nothing but pass datagrams on, through the same socket adapter as the
 * programs. What comes from anyone but `--next` goes to `--next`; what comes
 * back goes to whoever sent last (one client at a time is all the rows need).
 * Reports {"port"} once bound; exits when stdin closes.
 */
import { openUdp, type UdpSocket } from "../../core/runtime/udp.ts";
import { flag, onCommands, parseHostPort, report } from "../lib/child-io.ts";

const next = parseHostPort(flag("next", ""));
let client = { port: 0, host: "" };
let socket: UdpSocket | null = null;
socket = await openUdp({
  host: "127.0.0.1",
  port: 0,
  onPacket(data, port, host) {
    if (port === next.port && host === next.host) {
      if (client.port !== 0) socket!.send(data, client.port, client.host);
      return;
    }
    if (port !== client.port || host !== client.host) client = { port, host };
    socket!.send(data, next.port, next.host);
  },
  onError: () => {}, // ICMP port unreachable after a prober left: harmless
});
report({ port: socket.address.port });
onCommands(() => {});
