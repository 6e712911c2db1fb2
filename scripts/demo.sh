#!/usr/bin/env bash
# The dockyard demo: a daemon on a private root, a real container, and the event stream.
set -euo pipefail

work=$(mktemp -d /tmp/dockyard-demo.XXXXXX)
export DOCKYARD_ADDRESS="$work/state/dockyard.sock"
export DOCKYARD_NAMESPACE=demo
cat > "$work/config.toml" <<TOML
root = "$work/root"
state = "$work/state"
[websocket]
address = "127.0.0.1:0"
TOML

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  set +e
  [ -n "${events_pid:-}" ] && kill "$events_pid" 2>/dev/null
  if [ -n "${daemon_pid:-}" ]; then
    dockyard tasks ls -q 2>/dev/null | while read -r id; do dockyard tasks kill -s SIGKILL "$id"; dockyard tasks rm -f "$id"; done
    kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null
  fi
  grep -q "$work" /proc/self/mountinfo && awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
}
trap cleanup EXIT

say "starting dockyardd on a private root: $work"
dockyardd --config "$work/config.toml" --log-level warning &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$DOCKYARD_ADDRESS" ] && dockyard version >/dev/null 2>&1 && break; sleep 0.1; done
dockyard version

say "the plugin graph"
dockyard plugins ls

say "following events (dockyard events) in the background"
dockyard events &
events_pid=$!
sleep 0.3

say "namespaces are metadata partitions"
dockyard namespaces create demo owner=me
dockyard namespaces label demo tier=gold
dockyard namespaces ls

if dockyard run --help >/dev/null 2>&1 && dockyard images import --help >/dev/null 2>&1; then
  say "building a busybox image on the spot and importing it"
  python3 "$(dirname "$0")/make_busybox_image.py" "$work/busybox.tar"
  dockyard images import --base-name demo/busybox "$work/busybox.tar"
  dockyard images ls
  say "running a real container (runc under a dockyard shim)"
  dockyard run --rm --hostname hello demo/busybox:latest hello /bin/sh -c 'echo "hello from $(hostname), pid $$ in its own namespaces"; uname -a'
  echo "exit code: $?"
fi

sleep 0.5
say "done; the daemon shuts down and the private root is removed"
