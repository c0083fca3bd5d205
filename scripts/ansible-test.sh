#!/usr/bin/env bash
# The Ansible deployment, tested on real hosts built on this machine:
#
#   hosts     five Debian 12 systems booted with `systemd-nspawn --boot` from
#             one debootstrap root (each with its own writable overlay),
#             systemd as their PID 1, each in its own network namespace
#             (ztd-s1, ztd-s2, ztd-c1, ztd-c2, ztd-a1; 10.77.0.0/24 on a
#             bridge in ztd-lan) running its own sshd. Ansible runs in a sixth
#             namespace (ztd-ctl) and reaches them over SSH as an unprivileged
#             user with sudo, exactly as on cloud hosts.
#   fleet     2 servers, 2 connectors of one service (each in front of a UDP
#             echo service on its host), 1 agent; mTLS from a test CA.
#
#   1. ansible-lint (production profile), the role-prefix rule of current
#      ansible-lint (helpers.py role-prefix), --syntax-check
#   2. site.yml --check on the fresh hosts: no failure, nothing written
#   3. site.yml: units active under systemd with their sandbox enforced
#      (checked in /proc of the running programs), systemd-analyze verify and
#      security on the live units, /status on both servers, echoes through
#      agent -> server -> connector -> echo
#   4. every syscall the deployed programs make (traced with strace on their
#      hosts, their units stopped meanwhile) is inside SystemCallFilter=
#   5. rolling-upgrade.yml refuses a build that fails its .sha256 before any
#      program stops; a connector roll is refused while no other connector of
#      its service is registered
#   6. the rolls under 200 requests/s through the tunnel, each counted:
#        a. rolling-upgrade.yml of the servers and connectors to a second build
#        b. the same back to the first build, with one server taking 15 s to
#           come back (ExecStartPre=/bin/sleep 15)
#        c. site.yml with a changed server config: restarts rolled with drain
#   7. a rotated server certificate: reload (SIGHUP), same processes;
#      site.yml again: changed=0
#   8. the agent's own upgrade (its listener is closed while it restarts:
#      reported, not part of the fleet's count)
# It ends with the line `roll: lost N of M` (all fleet rolls together).
#
#   scripts/ansible-test.sh                        (KEEP=1 keeps the work dir)
#   ZTD_ROOTFS=/var/tmp/ztd-rootfs scripts/ansible-test.sh   reuse a root built before
#   ZTNA_BINARY=/path/ztna scripts/ansible-test.sh           test another build
#
# Needs root, and (Debian): apt-get install -y ansible ansible-lint systemd
#   systemd-container debootstrap iproute2 openssh-client strace python3
# plus network access to deb.debian.org for debootstrap (nothing is cached
# in git), and node_modules (npm ci) for the builds and the test PKI.
set -euo pipefail
# The whole script is one brace group, so bash reads all of it before running
# any: editing the file while a run is under way cannot derail that run.
{
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ANSIBLE_DIR=$REPO/ansible
HELPERS=$ANSIBLE_DIR/test/helpers.py
START=$SECONDS
export ANSIBLE_CONFIG=$ANSIBLE_DIR/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
NET=10.77.0
HOSTS=(s1 s2 c1 c2 a1)
declare -A IP=([ctl]=$NET.1 [s1]=$NET.11 [s2]=$NET.12 [c1]=$NET.21 [c2]=$NET.22 [a1]=$NET.31)
MIRROR=${ZTD_MIRROR:-http://deb.debian.org/debian}
# Bump when the root's recipe below changes, so a reused ZTD_ROOTFS is rebuilt.
ROOTFS_RECIPE=4
ECHO_PORT=7777
AGENT_PORT=15000
RATE=200

step() { printf '\n==> %s (%ss)\n' "$*" "$((SECONDS - START))"; }
die() { printf 'ansible-test: FAIL: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root: the test creates network namespaces and boots containers"
missing=()
for tool in ansible-playbook ansible-lint systemd-analyze systemd-nspawn debootstrap ip ssh ssh-keygen nsenter python3 strace; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  printf 'ansible-test: missing: %s\n  install with: apt-get update && apt-get install -y ansible ansible-lint systemd systemd-container debootstrap iproute2 openssh-client util-linux strace python3\n' \
    "${missing[*]}" >&2
  exit 1
fi
[[ -x $REPO/node_modules/.bin/bun ]] || die "node_modules/.bin/bun is missing: run npm ci first"
BUN=$REPO/node_modules/.bin/bun

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ztna-ansible-test.XXXXXX")
export ANSIBLE_LOCAL_TEMP=$WORK/ansible-tmp
BG_PIDS=()
declare -A NSPAWN_PID LEADER
cleanup() {
  local pid h deadline
  for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # SIGTERM makes nspawn halt the container cleanly; a second one ends it at once.
  for h in "${!NSPAWN_PID[@]}"; do kill -TERM "${NSPAWN_PID[$h]}" 2>/dev/null || true; done
  deadline=$((SECONDS + 20))
  for h in "${!NSPAWN_PID[@]}"; do
    while kill -0 "${NSPAWN_PID[$h]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "${NSPAWN_PID[$h]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for h in "${HOSTS[@]}" ctl lan; do ip netns del "ztd-$h" 2>/dev/null || true; done
  for h in "${HOSTS[@]}"; do python3 "$HELPERS" cgroup-remove "ztd-$h" 2>/dev/null || true; done
  if [[ -n ${KEEP:-} ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- builds ------------------------------------------------------------------
step "the builds: dist/ztna and a second one for the rolls"
if [[ -n ${ZTNA_BINARY:-} ]]; then
  BIN=$ZTNA_BINARY
  [[ -x $BIN ]] || die "ZTNA_BINARY=$BIN is not an executable"
  SHA=$BIN.sha256
  [[ -f $SHA ]] || { SHA=$WORK/ztna.sha256; (cd "$(dirname "$BIN")" && sha256sum "$(basename "$BIN")") >"$SHA"; }
else
  (cd "$REPO" && "$BUN" scripts/build.ts) || die "npm run build failed"
  BIN=$REPO/dist/ztna SHA=$REPO/dist/ztna.sha256
fi
NEW=$WORK/new/ztna
mkdir -p "$WORK/new"
(cd "$REPO" && "$BUN" ansible/test/build-variant.ts "$NEW" roll-test) || die "could not build the second build"
echo "first build:  $("$BIN" version) sha256 $(cut -c1-16 "$SHA")..."
echo "second build: $("$NEW" version) sha256 $(cut -c1-16 "$NEW.sha256")..."

# --- 1. lint and syntax ----------------------------------------------------------
step "ansible-lint (production profile) and the role-prefix rule"
(cd "$ANSIBLE_DIR" && ansible-lint --offline --nocolor -c .ansible-lint site.yml rolling-upgrade.yml inventory.example.yml roles) \
  || die "ansible-lint reported problems"
python3 "$HELPERS" role-prefix "$ANSIBLE_DIR" || die "role variables without their role's prefix"

step "test PKI and inventory"
(cd "$REPO" && "$BUN" ansible/test/make-certs.ts "$WORK/pki" echo "${IP[s1]}" "${IP[s2]}") || die "could not create test certificates"
mkdir -p "$WORK/ssh/authorized"
ssh-keygen -q -t ed25519 -N '' -C ztd-controller -f "$WORK/ssh/id_ed25519"
cp "$WORK/ssh/id_ed25519.pub" "$WORK/ssh/authorized/admin"
chmod 0755 "$WORK/ssh/authorized"
: >"$WORK/ssh/known_hosts"
for h in "${HOSTS[@]}"; do
  mkdir -p "$WORK/hosts/$h/ssh"
  ssh-keygen -q -t ed25519 -N '' -C "ztd-$h" -f "$WORK/hosts/$h/ssh/ssh_host_ed25519_key"
  echo "${IP[$h]} $(cut -d' ' -f1,2 "$WORK/hosts/$h/ssh/ssh_host_ed25519_key.pub")" >>"$WORK/ssh/known_hosts"
done
SSH_ARGS="-o UserKnownHostsFile=$WORK/ssh/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o ControlMaster=auto -o ControlPersist=120s -o ControlPath=$WORK/ssh/cm-%C -o ConnectTimeout=5"

INV=$WORK/inventory.yml
cat >"$INV" <<EOF
all:
  vars:
    ansible_user: admin
    ansible_ssh_private_key_file: "$WORK/ssh/id_ed25519"
    ansible_ssh_common_args: "$SSH_ARGS"
    ansible_python_interpreter: /usr/bin/python3
    ztna_common_binary_src: "$BIN"
    ztna_common_binary_sha256_src: "$SHA"
    ztna_common_ca_src: "$WORK/pki/ca.pem"
    ztna_server_cert_src: "$WORK/pki/server.pem"
    ztna_server_key_src: "$WORK/pki/server-key.pem"
    ztna_connector_cert_src: "$WORK/pki/connector.pem"
    ztna_connector_key_src: "$WORK/pki/connector-key.pem"
    ztna_agent_cert_src: "$WORK/pki/agent.pem"
    ztna_agent_key_src: "$WORK/pki/agent-key.pem"
  children:
    ztna_servers:
      hosts:
        ztd-s1: {ansible_host: "${IP[s1]}", ztna_server_advertise: "${IP[s1]}:4433"}
        ztd-s2: {ansible_host: "${IP[s2]}", ztna_server_advertise: "${IP[s2]}:4433"}
      vars:
        ztna_server_grace: 5
    ztna_connectors:
      hosts:
        ztd-c1: {ansible_host: "${IP[c1]}"}
        ztd-c2: {ansible_host: "${IP[c2]}"}
      vars:
        ztna_connector_service: echo
        ztna_connector_forward: "127.0.0.1:$ECHO_PORT"
        ztna_connector_grace: 5
    ztna_agents:
      hosts:
        ztd-a1:
          ansible_host: "${IP[a1]}"
          ztna_agent_maps: ["echo=udp://127.0.0.1:$AGENT_PORT"]
EOF

step "ansible-playbook --syntax-check"
for pb in site.yml rolling-upgrade.yml; do
  (cd "$ANSIBLE_DIR" && ansible-playbook -i "$INV" --syntax-check "$pb") >/dev/null || die "syntax check of $pb"
done
echo "site.yml, rolling-upgrade.yml: syntax ok"

# --- 2. the hosts ----------------------------------------------------------------
ROOTFS=${ZTD_ROOTFS:-$WORK/rootfs}
if [[ $(cat "$ROOTFS/.ztd-recipe" 2>/dev/null) != "$ROOTFS_RECIPE" ]]; then
  step "debootstrap a Debian 12 root for the hosts ($MIRROR)"
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,procps,strace \
    bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed (it needs $MIRROR)"; }
  # Each host brings its own SSH host key (bound in at boot), so none is shared.
  rm -f "$ROOTFS"/etc/ssh/ssh_host_*
  cat >"$ROOTFS/etc/ssh/sshd_config.d/ztd.conf" <<'EOF'
HostKey /etc/ssh/host/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/authorized/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
EOF
  chroot "$ROOTFS" useradd --create-home --shell /bin/bash admin
  echo 'admin ALL=(ALL) NOPASSWD:ALL' >"$ROOTFS/etc/sudoers.d/admin"
  chmod 0440 "$ROOTFS/etc/sudoers.d/admin"
  for h in "${HOSTS[@]}"; do echo "${IP[$h]} ztd-$h"; done >>"$ROOTFS/etc/hosts"
  # A fresh machine id per boot, the host name nspawn gives (not this
  # machine's, which debootstrap copied); no login on the passive console.
  : >"$ROOTFS/etc/machine-id"
  rm -f "$ROOTFS/etc/hostname"
  chroot "$ROOTFS" systemctl mask console-getty.service getty@.service >/dev/null 2>&1 || true
  echo "$ROOTFS_RECIPE" >"$ROOTFS/.ztd-recipe"
fi
echo "root: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1), $(chroot "$ROOTFS" dpkg-query -W -f '${Version}' systemd) systemd)"

step "network: a bridge in ztd-lan, one namespace per host"
for h in "${HOSTS[@]}" ctl lan; do ip netns del "ztd-$h" 2>/dev/null || true; done
ip netns add ztd-lan
ip -n ztd-lan link add br0 type bridge
ip -n ztd-lan link set br0 up
for h in ctl "${HOSTS[@]}"; do
  ip netns add "ztd-$h"
  ip -n "ztd-$h" link set lo up
  ip -n ztd-lan link add "v-$h" type veth peer name eth0 netns "ztd-$h"
  ip -n ztd-lan link set "v-$h" master br0 up
  ip -n "ztd-$h" addr add "${IP[$h]}/24" dev eth0
  ip -n "ztd-$h" link set eth0 up
done

step "boot the hosts: systemd-nspawn --boot, systemd as PID 1"
boot() { # HOST
  local h=$1 scope=()
  # Each container in a cgroup of its own (helpers.py cgroup-enter says why):
  # a delegated scope where the host runs systemd, else one made here.
  if [[ -d /run/systemd/system ]]; then
    scope=(systemd-run --scope --quiet --collect --property=Delegate=yes "--unit=ztd-$h-$$" --)
  else
    python3 "$HELPERS" cgroup-enter "ztd-$h" "$BASHPID" || die "could not create a cgroup for ztd-$h"
  fi
  exec "${scope[@]}" systemd-nspawn --boot --directory="$ROOTFS" --volatile=overlay --machine="ztd-$h" --hostname="ztd-$h" \
    --register=no --keep-unit --console=passive --network-namespace-path="/run/netns/ztd-$h" \
    --bind-ro="$WORK/hosts/$h/ssh:/etc/ssh/host" --bind-ro="$WORK/ssh/authorized:/etc/ssh/authorized" \
    >"$WORK/hosts/$h/console.log" 2>&1
}
for h in "${HOSTS[@]}"; do
  boot "$h" &
  NSPAWN_PID[$h]=$!
done
# The container's init is nspawn's child; commands for checks run in its namespaces.
on() { local h=$1; shift; nsenter --target "${LEADER[$h]}" --all -- "$@"; }
deadline=$((SECONDS + 90))
for h in "${HOSTS[@]}"; do
  until [[ -n ${LEADER[$h]:-} ]]; do
    LEADER[$h]=$(pgrep -P "${NSPAWN_PID[$h]}" -x systemd | head -1 || true)
    [[ -n ${LEADER[$h]} ]] && break
    kill -0 "${NSPAWN_PID[$h]}" 2>/dev/null || { cat "$WORK/hosts/$h/console.log"; die "systemd-nspawn --boot of ztd-$h exited (log above): the hosts cannot boot here"; }
    ((SECONDS < deadline)) || die "no init process for ztd-$h"
    sleep 0.2
  done
  until state=$(on "$h" systemctl is-system-running 2>/dev/null); [[ $state == running || $state == degraded ]]; do
    ((SECONDS < deadline)) || { on "$h" systemctl --failed --no-pager || true; die "ztd-$h did not finish booting (state: ${state:-none})"; }
    sleep 0.5
  done
  [[ $state == running ]] || { on "$h" systemctl --failed --no-pager; die "ztd-$h booted degraded"; }
  echo "ztd-$h: $(on "$h" ps -o comm= -p 1) is PID 1, system $state, sshd $(on "$h" systemctl is-active ssh)"
done

ctl() { ip netns exec ztd-ctl "$@"; }
step "SSH from the controller namespace, host keys verified"
for h in "${HOSTS[@]}"; do
  deadline=$((SECONDS + 30))
  # shellcheck disable=SC2086
  until out=$(ctl ssh $SSH_ARGS -i "$WORK/ssh/id_ed25519" "admin@${IP[$h]}" sudo -n id -un 2>&1); do
    ((SECONDS < deadline)) || { echo "$out"; die "no SSH to ztd-$h"; }
    sleep 0.5
  done
  [[ $out == root ]] || die "sudo on ztd-$h said $out"
done
echo "admin@ each host, sudo to root: ok"

# Runs a playbook from the controller namespace (in the background, so a
# signal reaches the traps at once) and checks the recap: no host failed;
# CHANGED (or - for any) summed over the hosts.
run_playbook() { # LOG ARGS...
  local log=$1 pid rc=0
  shift
  (cd "$ANSIBLE_DIR" && exec ip netns exec ztd-ctl ansible-playbook -i "$INV" "$@") >"$log" 2>&1 &
  pid=$!
  BG_PIDS+=("$pid")
  wait "$pid" || rc=$?
  return "$rc"
}
playbook() { # LOG CHANGED ARGS...
  local log=$1 want=$2 recap changed
  shift 2
  run_playbook "$log" "$@" || { tail -60 "$log"; die "ansible-playbook $* failed (log: $log)"; }
  recap=$(sed -n '/^PLAY RECAP/,$p' "$log" | grep -E ': ok=') || die "no PLAY RECAP in $log"
  if grep -qvE '[[:space:]]failed=0[[:space:]]' <<<"$recap"; then echo "$recap"; die "$* reported failures"; fi
  if grep -qvE '[[:space:]]unreachable=0[[:space:]]' <<<"$recap"; then echo "$recap"; die "$* found unreachable hosts"; fi
  changed=$(grep -oE 'changed=[0-9]+' <<<"$recap" | cut -d= -f2 | awk '{n += $1} END {print n}')
  echo "recap: $(wc -l <<<"$recap") hosts, changed=$changed ($(basename "$log"))"
  [[ $want == - || $changed == "$want" ]] || { echo "$recap"; die "$*: expected changed=$want"; }
}

# --- 3. deploy -----------------------------------------------------------------------
step "site.yml --check on the fresh hosts: no failure, nothing written"
playbook "$WORK/site-check.log" - --check site.yml
for h in "${HOSTS[@]}"; do
  if on "$h" test -e /usr/local/bin/ztna -o -e /etc/ztna; then die "site.yml --check wrote on ztd-$h"; fi
done
echo "nothing on any host"

step "private UDP echo services beside the connectors"
for h in c1 c2; do
  ip netns exec "ztd-$h" python3 "$HELPERS" echo "$ECHO_PORT" >"$WORK/echo-$h.log" 2>&1 &
  BG_PIDS+=($!)
done

step "site.yml: 2 servers, 2 connectors, 1 agent"
playbook "$WORK/site-1.log" - site.yml

status() { ip netns exec "ztd-$1" python3 "$HELPERS" status 9090; }
main_pid() { on "$1" systemctl show -p MainPID --value "ztna-$2.service"; }
declare -A PROGRAM=([s1]=server [s2]=server [c1]=connector [c2]=connector [a1]=agent)

step "the programs under systemd, their sandbox enforced"
for h in "${HOSTS[@]}"; do
  p=${PROGRAM[$h]}
  [[ $(on "$h" systemctl is-active "ztna-$p.service") == active ]] || die "ztna-$p on ztd-$h is not active"
  [[ $(on "$h" systemctl is-enabled "ztna-$p.service") == enabled ]] || die "ztna-$p on ztd-$h is not enabled"
  pid=$(main_pid "$h" "$p")
  st=$(on "$h" cat "/proc/$pid/status")
  user=$(on "$h" ps -o user= -p "$pid")
  [[ $user == ztna ]] || die "ztna-$p runs as $user"
  grep -qP '^NoNewPrivs:\t1$' <<<"$st" || die "ztna-$p: NoNewPrivs is not set"
  grep -qP '^Seccomp:\t2$' <<<"$st" || die "ztna-$p: no seccomp filter (SystemCallFilter=)"
  grep -qP '^CapEff:\t0+$' <<<"$st" || die "ztna-$p has capabilities: $(grep CapEff <<<"$st")"
  grep -qP '^CapBnd:\t0+$' <<<"$st" || die "ztna-$p has a capability bounding set: $(grep CapBnd <<<"$st")"
  # ProtectSystem=strict: / (and so /usr, /etc) read-only in its own mount namespace.
  on "$h" cat "/proc/$pid/mountinfo" | python3 -c '
import sys
ro = {}
for line in sys.stdin:
    f = line.split()
    ro[f[4]] = "ro" in f[5].split(",")  # the last mount on a point is the one seen
sys.exit(not (ro.get("/") and ro.get("/usr", True) and ro.get("/etc", True)))' || die "ztna-$p: the system is not read-only for it"
  [[ $(on "$h" readlink "/proc/$pid/ns/mnt") != $(on "$h" readlink /proc/1/ns/mnt) ]] || die "ztna-$p shares PID 1's mount namespace"
  echo "ztd-$h ztna-$p: active, enabled, pid $pid as $user; NoNewPrivs, seccomp filter, no capabilities, read-only system, own mount namespace"
done

step "systemd-analyze verify and security, on the live units"
for h in s1 c1 a1; do
  p=${PROGRAM[$h]}
  out=$(on "$h" systemd-analyze verify "/etc/systemd/system/ztna-$p.service" 2>&1) || { echo "$out"; die "systemd-analyze verify ztna-$p"; }
  if grep -F "ztna-$p.service" <<<"$out"; then die "systemd-analyze verify warned about ztna-$p.service"; fi
  score=$(on "$h" systemd-analyze security --no-pager "ztna-$p.service" | grep -oE 'Overall exposure level for [^:]+: [0-9.]+' | awk '{print $NF}')
  [[ -n $score ]] || die "no exposure score for ztna-$p"
  python3 -c 'import sys; sys.exit(float(sys.argv[1]) > 2.5)' "$score" || die "ztna-$p.service exposure $score is above 2.5"
  echo "ztna-$p.service: verified; exposure $score (0 = locked down, 10 = unprotected; at most 2.5 allowed)"
done

# Waits until both servers list N live connectors of echo.
wait_connectors() { # N
  local h s deadline=$((SECONDS + 30))
  for h in s1 s2; do
    until s=$(status "$h" 2>/dev/null) && python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["live"].get("echo", 0) < int(sys.argv[2]))' "$s" "$1"; do
      ((SECONDS < deadline)) || die "ztd-$h does not list $1 live connectors of echo: ${s:-no answer}"
      sleep 0.5
    done
  done
}
round_trip() { ip netns exec ztd-a1 python3 "$HELPERS" round-trip "$AGENT_PORT" 15 "${1:-8}"; }

step "/status on both servers; echoes through agent -> server -> connector -> echo"
wait_connectors 2
for h in s1 s2; do echo "ztd-$h /status: $(status "$h")"; done
round_trip 8 || die "no echo through the tunnel"

# --- 4. syscalls ----------------------------------------------------------------------
step "syscalls of the deployed programs vs SystemCallFilter=@system-service (strace on their hosts)"
# Each traced program runs on its own host, as its user, with the config and
# certificates Ansible put there, while its unit is stopped. strace must work
# here: the check fails when it cannot run.
on s1 strace -f -qq -c -o /dev/null true >/dev/null 2>&1 || die "strace cannot trace on the hosts: the syscall check cannot run"
declare -A TRACED
for h in s1 c1 a1; do on "$h" systemctl stop "ztna-${PROGRAM[$h]}.service"; done
for h in s1 c1 a1; do
  p=${PROGRAM[$h]}
  on "$h" setpriv --reuid=ztna --regid=ztna --init-groups -- \
    strace -f -qq -c -o "/tmp/ztna-$p.syscalls" /usr/local/bin/ztna "$p" --config "/etc/ztna/$p.json" \
    >"$WORK/traced-$p.log" 2>&1 &
  TRACED[$h]=$!
  BG_PIDS+=($!)
  port=$([[ $p == server ]] && echo 9090 || { [[ $p == connector ]] && echo 9091 || echo 9092; })
  deadline=$((SECONDS + 30))
  until ip netns exec "ztd-$h" python3 "$HELPERS" ready "$port"; do
    kill -0 "${TRACED[$h]}" 2>/dev/null || { cat "$WORK/traced-$p.log"; die "traced $p exited"; }
    ((SECONDS < deadline)) || { tail "$WORK/traced-$p.log"; die "traced $p not ready"; }
    sleep 0.3
  done
done
round_trip 16 || die "no echo through the traced programs"
for h in a1 c1 s1; do
  p=${PROGRAM[$h]}
  on "$h" pkill -TERM -u ztna -x ztna || die "no traced $p to stop"
  rc=0; wait "${TRACED[$h]}" || rc=$?
  ((rc == 0)) || { tail "$WORK/traced-$p.log"; die "traced $p exited $rc after SIGTERM"; }
  cp "/proc/${LEADER[$h]}/root/tmp/ztna-$p.syscalls" "$WORK/$p.syscalls"
done
python3 "$HELPERS" syscalls "$WORK"/{server,connector,agent}.syscalls || die "a program made syscalls outside @system-service"
for h in s1 c1 a1; do on "$h" systemctl start "ztna-${PROGRAM[$h]}.service"; done
wait_connectors 2
round_trip 4 || die "no echo after the units started again"

# --- 5. refusals ----------------------------------------------------------------------
pids_now() { local h; for h in "${HOSTS[@]}"; do printf '%s=%s ' "$h" "$(main_pid "$h" "${PROGRAM[$h]}")"; done; }

step "rolling-upgrade.yml refuses a build that does not match its .sha256, before anything stops"
printf '%064d  ztna\n' 0 >"$WORK/new/bad.sha256"
before=$(pids_now)
if run_playbook "$WORK/roll-bad.log" -e "ztna_common_binary_src=$NEW" -e "ztna_common_binary_sha256_src=$WORK/new/bad.sha256" rolling-upgrade.yml; then
  die "rolling-upgrade.yml accepted a checksum mismatch"
fi
grep -q 'does not match' "$WORK/roll-bad.log" || { tail -30 "$WORK/roll-bad.log"; die "the roll failed for another reason"; }
[[ $(pids_now) == "$before" ]] || die "the refused roll restarted a program: $before -> $(pids_now)"
for h in "${HOSTS[@]}"; do
  [[ $(on "$h" /usr/local/bin/ztna version) == "$("$BIN" version)" ]] || die "the refused roll replaced the binary on ztd-$h"
done
echo "refused on the controller; every program kept its pid and binary"

step "a connector is not restarted while no other connector of its service is registered"
on c2 systemctl stop ztna-connector.service
wait_connectors 1
before=$(main_pid c1 connector)
if run_playbook "$WORK/roll-gate.log" --limit ztd-c1 -e ztna_common_roll_force=true -e ztna_common_roll_timeout=5 rolling-upgrade.yml; then
  die "the roll restarted the only connector of echo"
fi
grep -q 'no other connector of echo was registered on every server' "$WORK/roll-gate.log" || { tail -30 "$WORK/roll-gate.log"; die "the gate failed for another reason"; }
[[ $(main_pid c1 connector) == "$before" ]] || die "the refused roll restarted the connector on ztd-c1"
on c2 systemctl start ztna-connector.service
wait_connectors 2
echo "refused at the gate; the connector on ztd-c1 kept running (pid $before)"

# --- 6. rolls under load --------------------------------------------------------------
TOTAL_SENT=0 TOTAL_LOST=0
LOAD_PID=""
load_start() { # NAME
  LOAD_OUT=$WORK/load-$1.json
  ip netns exec ztd-a1 python3 "$HELPERS" load "$AGENT_PORT" "$RATE" "$LOAD_OUT" &
  LOAD_PID=$!
  BG_PIDS+=("$LOAD_PID")
  sleep 2
}
load_stop() { # NAME -> prints its line, adds to the totals; fails on a loss
  local sent lost
  sleep 2
  kill -TERM "$LOAD_PID"
  wait "$LOAD_PID" || die "the load generator failed"
  sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$LOAD_OUT")
  lost=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lost_count"])' "$LOAD_OUT")
  TOTAL_SENT=$((TOTAL_SENT + sent)) TOTAL_LOST=$((TOTAL_LOST + lost))
  ROLL_LINES+=("$1: lost $lost of $sent")
  echo "$1: lost $lost of $sent requests ($RATE/s)"
  ((sent > 0)) || die "$1: no requests were sent"
  ((lost == 0)) || die "$1: lost $lost of $sent: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lost"][:20])' "$LOAD_OUT")"
}
ROLL_LINES=()
FLEET=(--limit 'ztna_servers:ztna_connectors')
program_log() { on "$1" journalctl -u "ztna-${PROGRAM[$1]}.service" -o cat --no-pager; }
# The roll's order, from the programs' own logs: each server drained only
# after the one before it was serving echo with both connectors again, and
# each connector only while another one was registered.
check_order() { # SINCE(epoch)
  local h
  for h in s1 s2 c1 c2; do program_log "$h" >"$WORK/journal-$h.log"; done
  python3 - "$1" "$WORK" <<'PY' || die "the roll did not go one at a time"
import json, sys
from datetime import datetime
since, work = float(sys.argv[1]), sys.argv[2]
def events(h):
    out = []
    for line in open(f"{work}/journal-{h}.log"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        t = datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
        if t >= since:
            out.append((t, e))
    return out
def first(h, event, after=0.0):
    return next((t for t, e in events(h) if e["event"] == event and t > after), None)
d1, d2 = first("s1", "draining"), first("s2", "draining")
assert d1 and d2 and d1 < d2, f"servers drained out of order: s1 {d1}, s2 {d2}"
up1 = first("s1", "listening", d1)
regs = sorted(t for t, e in events("s1") if e["event"] == "registered" and up1 and t > up1)
assert up1 and len(regs) >= 2 and regs[1] < d2, "s2 drained before s1 had both connectors back"
print(f"s1 drained, back and serving echo with 2 connectors {d2 - regs[1]:.1f} s before s2 drained")
c1 = first("c1", "draining"); c2 = first("c2", "draining")
assert c1 and c2 and c1 < c2, f"connectors drained out of order: c1 {c1}, c2 {c2}"
back = [t for t, e in events("c1") if e["event"] == "registered" and t > c1]
assert len(back) >= 2 and back[1] < c2, "c2 drained before c1 was registered on both servers again"
print(f"c1 registered on both servers again {c2 - back[1]:.1f} s before c2 drained")
PY
}
versions_are() { # SUFFIX
  local h v
  for h in s1 s2 c1 c2; do
    v=$(on "$h" /usr/local/bin/ztna version)
    [[ $v == *"($1)" ]] || die "ztd-$h has $v, want ($1)"
  done
  for h in s1 s2; do
    python3 -c 'import json,sys; v=json.loads(sys.argv[1]); sys.exit(not (v["version"].endswith(f"({sys.argv[2]})") and v["connector_versions"] == [v["version"]]))' "$(status "$h")" "$1" \
      || die "ztd-$h /status does not show the ($1) build everywhere: $(status "$h")"
  done
  echo "every server and connector runs ($1), and both servers' /status say so"
}
commit_of() { "$1" version | sed -E 's/.*\((.*)\)$/\1/'; }

step "roll a: rolling-upgrade.yml of the fleet to the second build, under $RATE requests/s"
since=$(date +%s.%N)
load_start roll-a
t0=$SECONDS
playbook "$WORK/roll-a.log" - "${FLEET[@]}" -e "ztna_common_binary_src=$NEW" -e "ztna_common_binary_sha256_src=$NEW.sha256" rolling-upgrade.yml
echo "rolled in $((SECONDS - t0)) s"
load_stop "roll a (rolling-upgrade.yml, servers and connectors)"
check_order "$since"
versions_are roll-test
# Staged and checked before the program stopped: the swap's task comes before the restart's in every host's run.
python3 - "$WORK/roll-a.log" <<'PY' || die "a binary was not staged and verified before its program restarted"
import re, sys
host_tasks = {}
task = None
for line in open(sys.argv[1]):
    m = re.match(r"^TASK \[(.*)\]", line)
    if m:
        task = m.group(1)
        continue
    m = re.match(r"^(ok|changed): \[([^\]\s]+)\]", line)  # not "[host -> localhost]" (delegated)
    if m and task:
        host_tasks.setdefault(m.group(2), []).append(task)
for host, tasks in host_tasks.items():
    staged = [i for i, t in enumerate(tasks) if "Check the staged binary against the .sha256 file" in t]
    swap = [i for i, t in enumerate(tasks) if "Swap the new binary in" in t]
    restart = [i for i, t in enumerate(tasks) if "Restart (drain)" in t]
    assert staged and swap and restart and staged[0] < swap[0] < restart[0], f"{host}: {tasks}"
    print(f"{host}: staged, checked, swapped, then restarted")
PY

step "roll b: back to the first build, ztd-s1 taking 15 s to come back, under $RATE requests/s"
on s1 mkdir -p /etc/systemd/system/ztna-server.service.d
printf '[Service]\nExecStartPre=/bin/sleep 15\n' | on s1 tee /etc/systemd/system/ztna-server.service.d/slow.conf >/dev/null
on s1 systemctl daemon-reload
since=$(date +%s.%N)
load_start roll-b
t0=$SECONDS
playbook "$WORK/roll-b.log" - "${FLEET[@]}" rolling-upgrade.yml
echo "rolled in $((SECONDS - t0)) s"
load_stop "roll b (rolling-upgrade.yml, one server 15 s slow)"
check_order "$since"
python3 - "$WORK/journal-s1.log" "$since" <<'PY' || die "ztd-s1 was not away for 15 s"
import json, sys
from datetime import datetime
ts = lambda e: datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ev = [e for e in ev if ts(e) >= float(sys.argv[2])]
drained = next(ts(e) for e in ev if e["event"] == "drained")
listening = next(ts(e) for e in ev if e["event"] == "listening" and ts(e) > drained)
print(f"ztd-s1 was away {listening - drained:.1f} s")
sys.exit(listening - drained < 15)
PY
on s1 rm -r /etc/systemd/system/ztna-server.service.d
on s1 systemctl daemon-reload
versions_are "$(commit_of "$BIN")"

step "roll c: site.yml with a changed server config restarts the servers one at a time, under $RATE requests/s"
since=$(date +%s.%N)
load_start roll-c
playbook "$WORK/roll-c.log" - -e '{"ztna_server_extra_config": {"flowIdle": "90s"}}' site.yml
load_stop "roll c (site.yml, server config)"
for h in s1 s2; do [[ $(on "$h" python3 -c 'import json; print(json.load(open("/etc/ztna/server.json"))["flowIdle"])') == 90s ]] || die "ztd-$h has not the new config"; done
python3 - "$WORK/roll-c.log" <<'PY' || die "site.yml did not restart the servers one at a time, waiting for their services"
import re, sys
text = open(sys.argv[1]).read()
# serial: 1 gives one PLAY section per server batch; each restart is followed by the wait for its services.
restarts = re.findall(r"TASK \[ztna_common : Restart \(drain\): ztna-server\][^\n]*\n(?:changed|ok): \[(ztd-s\d)\]", text)
waits = re.findall(r"TASK \[ztna_common : Wait for the live connectors of each recorded service\]", text)
assert restarts == ["ztd-s1", "ztd-s2"], restarts
assert len(waits) == 2, waits
print("site.yml restarted ztd-s1, waited for echo's connectors, then ztd-s2")
PY

# --- 7. reload and idempotence ----------------------------------------------------------
step "a rotated server certificate: site.yml reloads (SIGHUP) both servers, same processes"
(cd "$REPO" && "$BUN" ansible/test/make-certs.ts "$WORK/pki" --server server2 "${IP[s1]}" "${IP[s2]}") || die "could not issue a new server certificate"
ROT=(-e "ztna_server_cert_src=$WORK/pki/server2.pem" -e "ztna_server_key_src=$WORK/pki/server2-key.pem"
  -e '{"ztna_server_extra_config": {"flowIdle": "90s"}}')
before=$(pids_now)
playbook "$WORK/site-rotate.log" - "${ROT[@]}" site.yml
[[ $(pids_now) == "$before" ]] || die "the rotation restarted a program: $before -> $(pids_now)"
for h in s1 s2; do
  program_log "$h" | grep -q '"event":"tls_reloaded"' || die "ztd-$h did not log tls_reloaded"
done
grep -qE 'Reload \(SIGHUP' "$WORK/site-rotate.log" || die "site.yml did not reload"
round_trip 4 || die "no echo after the reload"
echo "both servers reloaded their certificate; no process was restarted"

step "site.yml again: idempotent (changed=0)"
playbook "$WORK/site-last.log" 0 "${ROT[@]}" site.yml

step "the agent's own upgrade to the second build (reported, not counted: its listener is closed while it restarts)"
before=$(main_pid a1 agent)
playbook "$WORK/roll-agent.log" - --limit ztna_agents -e "ztna_common_binary_src=$NEW" -e "ztna_common_binary_sha256_src=$NEW.sha256" rolling-upgrade.yml
[[ $(main_pid a1 agent) != "$before" ]] || die "the agent was not restarted"
[[ $(on a1 /usr/local/bin/ztna version) == *"(roll-test)" ]] || die "the agent did not get the second build"
gap=$(on a1 journalctl -u ztna-agent.service -o cat --no-pager | python3 -c '
import json, sys
from datetime import datetime
ev = [json.loads(l) for l in sys.stdin if l.startswith("{")]
ts = lambda e: datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
stop = [ts(e) for e in ev if e["event"] == "draining"][-1]
up = [ts(e) for e in ev if e["event"] == "service_opened" and ts(e) > stop][0]
print(f"{up - stop:.1f}")')
echo "agent on ztd-a1 restarted on the second build; from its drain to the service open again: $gap s"
round_trip 4 || die "no echo after the agent's upgrade"

printf '\n'
for line in "${ROLL_LINES[@]}"; do echo "$line"; done
printf 'ansible-test: PASS in %ss\n' "$((SECONDS - START))"
echo "roll: lost $TOTAL_LOST of $TOTAL_SENT"
exit
}
