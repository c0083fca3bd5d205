"""Small network and check helpers for scripts/ansible-test.sh (python3, stdlib only).

  helpers.py free-ports N           N loopback ports free for both TCP and UDP
  helpers.py echo PORT              UDP echo service on 127.0.0.1:PORT (SIGTERM exits 0)
  helpers.py ready PORT             exit 0 if http://127.0.0.1:PORT/readyz answers 200
  helpers.py round-trip PORT SECS   send datagrams to 127.0.0.1:PORT until one echoes back
  helpers.py syscalls FILE...       check `strace -c` summaries against @system-service
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_ports(count: int) -> None:
    held, ports = [], []
    while len(ports) < count:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            tcp.close()
            continue
        held += [tcp, udp]  # keep bound so the next pick differs
        ports.append(port)
    print(*ports)


def echo(port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data, peer)


def ready(port: int) -> None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            sys.exit(0 if r.status == 200 else 1)
    except Exception:
        sys.exit(1)


def round_trip(port: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    payload = b"ztna-ansible-" + os.urandom(8).hex().encode()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendto(payload, ("127.0.0.1", port))
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            continue
        if data == payload:
            print(f"echoed {len(data)} bytes: {data.decode()}")
            return
    sys.exit(f"no echo from 127.0.0.1:{port} within {seconds} s")


def filter_set(group: str, seen: set) -> set:
    """The syscall names a systemd filter group allows, nested groups expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                names |= filter_set(item, seen)
        else:
            names.add(item)
    return names


def syscalls(files: list) -> None:
    allowed = filter_set("@system-service", set())
    bad = False
    for path in files:
        used = set()
        with open(path) as f:
            for line in f:
                cols = line.split()
                if cols and cols[0][0].isdigit() and cols[-1] != "total":
                    used.add(cols[-1])
        outside = sorted(used - allowed)
        print(f"{os.path.basename(path)}: {len(used)} distinct syscalls, outside the filter: {', '.join(outside) or 'none'}")
        bad |= bool(outside) or not used
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "free-ports":
        free_ports(int(args[0]))
    elif command == "echo":
        echo(int(args[0]))
    elif command == "ready":
        ready(int(args[0]))
    elif command == "round-trip":
        round_trip(int(args[0]), float(args[1]))
    elif command == "syscalls":
        syscalls(args)
    else:
        sys.exit(f"unknown command {command}")
