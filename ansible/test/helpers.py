"""Network and check helpers for scripts/ansible-test.sh (python3 + PyYAML, which Ansible brings).

  helpers.py echo PORT                 UDP echo service on 127.0.0.1:PORT (SIGTERM exits 0)
  helpers.py ready PORT                exit 0 if http://127.0.0.1:PORT/readyz answers 200
  helpers.py status PORT               print the live connectors per service from /status (JSON)
  helpers.py round-trip PORT SECS [N]  N datagrams (default 1) from N source ports to 127.0.0.1:PORT, each echoed within SECS
  helpers.py load PORT RATE OUT        requests at RATE/s to 127.0.0.1:PORT until SIGTERM, then
                                       waits 3 s for late answers and writes {"sent","answered","lost"} to OUT
  helpers.py syscalls FILE...          check `strace -c` summaries against @system-service
  helpers.py role-prefix ANSIBLE_DIR   role variables carry their role's name as prefix
                                       (ansible-lint's var-naming[no-role-prefix], as of ansible-lint 24-26)
  helpers.py cgroup-enter NAME PID     move PID into a new cgroup NAME below its own, in every hierarchy
  helpers.py cgroup-remove NAME        remove those cgroups (and what the container left in them)
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


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


def status(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=3) as r:
        doc = json.load(r)
    live = {s["name"]: sum(1 for c in s["connectors"] if not c["draining"]) for s in doc["services"]}
    versions = sorted({c["version"] or "?" for s in doc["services"] for c in s["connectors"]})
    print(json.dumps({"version": doc["version"], "draining": doc["draining"], "live": live,
                      "connector_versions": versions, "agents": doc["agents"], "flows": doc["flows"]}))


def round_trip(port: int, seconds: float, count: int) -> None:
    """`count` clients (one source port each, so the server spreads their flows), each echoed."""
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.5)
        payload = b"ztna-ansible-%d-" % i + os.urandom(8).hex().encode()
        deadline = time.monotonic() + seconds
        while True:
            if time.monotonic() > deadline:
                sys.exit(f"no echo from 127.0.0.1:{port} within {seconds} s (client {i + 1} of {count})")
            sock.sendto(payload, ("127.0.0.1", port))
            try:
                data, _ = sock.recvfrom(2048)
            except socket.timeout:
                continue
            if data == payload:
                break
        sock.close()
    print(f"{count} client(s) echoed through 127.0.0.1:{port}")


def load(port: int, rate: float, out: str) -> None:
    """Steady request/response traffic, no retries: every request must be answered once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    answered = set()
    sent = 0
    start = time.monotonic()
    target = ("127.0.0.1", port)

    def drain() -> None:
        while True:
            try:
                data, _ = sock.recvfrom(2048)
            except BlockingIOError:
                return
            if len(data) >= 8:
                answered.add(int.from_bytes(data[:8], "big"))

    while running[0]:
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            try:
                sock.sendto(sent.to_bytes(8, "big") + b"ztna-roll" * 6, target)
            except OSError:
                pass  # counted as lost when no answer comes
            sent += 1
        drain()
        time.sleep(0.002)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(answered) < sent:
        drain()
        time.sleep(0.01)
    lost = [i for i in range(sent) if i not in answered]
    with open(out, "w") as f:
        json.dump({"sent": sent, "answered": len(answered), "lost": lost[:100], "lost_count": len(lost)}, f)


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


# --- role variable prefixes -------------------------------------------------
# The rule as current ansible-lint applies it (rules/var_naming.py): names may
# start with underscores; then they must start with "<role>_" where
#   - keys of a role's defaults/ and vars/ files, and set_fact keys and
#     register names in its tasks/ and handlers/, take that role's name;
#   - `vars:` of an include_role/import_role task, and keys and vars of a
#     play's `roles:` entries, take the name of the role they go to.

def _tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _action(task):
    for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
        if key in task:
            return "role", task[key]
    for key in ("ansible.builtin.set_fact", "set_fact"):
        if key in task:
            return "set_fact", task[key]
    return None, None


def _bad(name: str, prefix: str) -> bool:
    return not name.lstrip("_").startswith(prefix + "_")


def _check_tasks(items, role, where, problems, role_dir=None):
    for task in _tasks(items):
        # Includes by "{{ role_path }}/tasks/X" are not followed by ansible-lint: check they exist.
        for key in ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "include_tasks", "import_tasks"):
            target = task.get(key)
            if isinstance(target, str) and target.startswith("{{ role_path }}/") and role_dir:
                path = os.path.join(role_dir, target[len("{{ role_path }}/"):])
                if not os.path.exists(path):
                    problems.append(f"{where}: includes {target}, which does not exist")
        kind, args = _action(task)
        if role and kind == "set_fact" and isinstance(args, dict):
            for k in args:
                if k != "cacheable" and not k.startswith("__") and _bad(k, role):
                    problems.append(f"{where}: set_fact {k} lacks the prefix {role}_")
        if role and task.get("register") and _bad(task["register"], role):
            problems.append(f"{where}: register {task['register']} lacks the prefix {role}_")
        if kind == "role" and isinstance(args, dict):
            target = str(args.get("name", "")).split(".")[-1].split("/")[-1]
            for k in task.get("vars") or {}:
                if _bad(k, target):
                    problems.append(f"{where}: vars {k} passed to role {target} lacks the prefix {target}_")


def role_prefix(ansible_dir: str) -> None:
    import yaml

    problems = []
    roles_dir = os.path.join(ansible_dir, "roles")
    for role in sorted(os.listdir(roles_dir)):
        for sub in ("defaults", "vars"):
            d = os.path.join(roles_dir, role, sub)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                data = yaml.safe_load(open(os.path.join(d, name))) or {}
                for k in data:
                    if _bad(k, role):
                        problems.append(f"roles/{role}/{sub}/{name}: {k} lacks the prefix {role}_")
        for sub in ("tasks", "handlers"):
            d = os.path.join(roles_dir, role, sub)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                _check_tasks(yaml.safe_load(open(os.path.join(d, name))), role, f"roles/{role}/{sub}/{name}", problems,
                             os.path.join(roles_dir, role))
    for name in sorted(os.listdir(ansible_dir)):
        if not name.endswith(".yml") or name.startswith("inventory"):
            continue
        for play in yaml.safe_load(open(os.path.join(ansible_dir, name))) or []:
            for entry in play.get("roles") or []:
                if isinstance(entry, dict):
                    target = str(entry.get("role", entry.get("name", ""))).split("/")[-1]
                    keys = [k for k in entry if k not in ("role", "name", "when", "tags", "vars", "become", "delegate_to")]
                    for k in keys + list(entry.get("vars") or {}):
                        if _bad(k, target):
                            problems.append(f"{name}: {k} given to role {target} lacks the prefix {target}_")
            for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                _check_tasks(play.get(key), None, name, problems)
    for p in problems:
        print(p)
    print(f"role variable prefixes and includes: {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


# --- cgroups for the containers ----------------------------------------------
# Without systemd on the host, every systemd-nspawn would run in the same
# cgroup, and the containers' own systemd would then share (and clean up, and
# kill through) one /payload/system.slice/... tree. Each container gets its
# own cgroup, below the one we run in, in every mounted hierarchy.

def _hierarchies():
    """(mount dir, our path in it) for every cgroup hierarchy of this process."""
    mounts = []
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ")
        fstype, _src, opts = right.split()[:3]
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((fstype, left.split()[4], set(opts.split(","))))
    out = []
    for line in open("/proc/self/cgroup"):
        _id, controllers, path = line.rstrip("\n").split(":", 2)
        wanted = set(controllers.split(",")) if controllers else set()
        for fstype, point, opts in mounts:
            if (not controllers and fstype == "cgroup2") or (controllers and fstype == "cgroup" and wanted <= opts):
                out.append((point, path))
                break
    return out


def cgroup_enter(name: str, pid: int) -> None:
    for point, path in _hierarchies():
        parent = os.path.join(point, path.lstrip("/"))
        group = os.path.join(parent, name)
        os.makedirs(group, exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset: empty until copied from the parent
            if os.path.exists(os.path.join(group, f)) and not open(os.path.join(group, f)).read().strip():
                with open(os.path.join(group, f), "w") as out:
                    out.write(open(os.path.join(parent, f)).read())
        with open(os.path.join(group, "cgroup.procs"), "w") as procs:
            procs.write(str(pid))


def cgroup_remove(name: str) -> None:
    for point, path in _hierarchies():
        group = os.path.join(point, path.lstrip("/"), name)
        for root, _dirs, _files in sorted(os.walk(group), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(root)
            except OSError:
                pass


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "echo":
        echo(int(args[0]))
    elif command == "ready":
        ready(int(args[0]))
    elif command == "status":
        status(int(args[0]))
    elif command == "round-trip":
        round_trip(int(args[0]), float(args[1]), int(args[2]) if len(args) > 2 else 1)
    elif command == "load":
        load(int(args[0]), float(args[1]), args[2])
    elif command == "syscalls":
        syscalls(args)
    elif command == "role-prefix":
        role_prefix(args[0])
    elif command == "cgroup-enter":
        cgroup_enter(args[0], int(args[1]))
    elif command == "cgroup-remove":
        cgroup_remove(args[0])
    else:
        sys.exit(f"unknown command {command}")
