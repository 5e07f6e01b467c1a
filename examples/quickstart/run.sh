#!/usr/bin/env bash
# The quickstart, end to end, inside a throw-away network + mount namespace that
# plays the host: plan, apply, a real TCP connection between the two sandboxes,
# and an empty re-plan. Nothing here touches this machine's own network; all of
# it vanishes when the script exits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# cnm as installed (an activated venv puts it first on PATH), else the README's venv.
if [ -z "${CNM:-}" ]; then
  if command -v cnm >/dev/null; then cnm=cnm
  elif [ -x "$repo/.venv/bin/cnm" ]; then cnm=$repo/.venv/bin/cnm
  else echo "quickstart: no cnm; install it as the README says (a venv in $repo/.venv)" >&2; exit 1
  fi
else cnm=$CNM
fi

if [ "${CNM_QUICKSTART_INSIDE:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "quickstart: run as root (it creates namespaces)" >&2; exit 1; }
  exec unshare --net --mount --propagation private \
    env CNM_QUICKSTART_INSIDE=1 CNM="$cnm" bash "$0" "$@"
fi

for dir in /run/netns /etc/netns /run/cnm; do
  mkdir -p "$dir" && mount -t tmpfs cnm-quickstart "$dir"
done
ip link set lo up
# The resolver cnm started is a process, not a kernel object: end it (by its pid
# file, on this namespace's private /run/cnm) when the namespace goes.
trap 'for pidfile in /run/cnm/resolver/*/pid; do
        [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
      done' EXIT

# Each command is shown bold on a terminal, as cnm colours its own output: never
# in a pipe or with NO_COLOR set, always with FORCE_COLOR (docs/cli.md, "Colour").
if [ -z "${NO_COLOR:-}" ] && { [ -n "${FORCE_COLOR:-}" ] || { [ -t 1 ] && [ "${TERM:-}" != dumb ]; }; }
then bold=$'\033[1m' plain=$'\033[0m'
else bold='' plain=''
fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; "$@"; }

step $cnm validate -f "$here"
step $cnm plan -f "$here"
step $cnm apply -f "$here" --yes
step $cnm get
step ip -br addr show dev br-frontend
step ip -n web2 -br addr show dev eth0
step cat /etc/netns/web2/hosts /etc/netns/web2/resolv.conf
step ip netns exec web2 getent hosts www web1

# A real TCP connection: a server in sandbox web1, a client in sandbox web2
# that finds it by the alias "www" through cnm's resolver.
ip netns exec web1 python3 -c '
import socket
srv = socket.create_server(("0.0.0.0", 8080))
conn, peer = srv.accept()
conn.sendall(b"hello from web1 to %s\n" % peer[0].encode())
conn.close()' &
server=$!
sleep 0.3
step ip netns exec web2 python3 -c '
import socket
with socket.create_connection(("www", 8080), timeout=5) as c:
    print(c.recv(100).decode(), end="")'
wait "$server"

step $cnm plan -f "$here" --detailed-exitcode
echo
echo "quickstart: OK (the re-plan is empty; the namespace and everything in it is gone on exit)"
