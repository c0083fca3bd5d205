/**
 * The UDP echo service used for RTT, in its own process so the prober and the
 * service never share an event loop. Reports {"port"} once bound; exits when
 * stdin closes. Run: bun bench/echo-server.ts [--host 127.0.0.1]
 */
import { openUdp, type UdpSocket } from "../../core/runtime/udp.ts";
import { flag, onCommands, report } from "../lib/child-io.ts";

let socket: UdpSocket | null = null;
socket = await openUdp({
  host: flag("host", "127.0.0.1"),
  port: 0,
  onPacket: (data, port, host) => void socket!.send(data, port, host),
  onError: () => {}, // ICMP port unreachable after a prober left: harmless
});
report({ port: socket.address.port });
onCommands(() => {});
