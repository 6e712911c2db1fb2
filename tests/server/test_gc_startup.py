"""The garbage collector is off while the daemon starts, and on once it serves (or fails to start)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from actors.server.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import gc, os, signal, sys, threading, time
from actors.server.main import main
from wire.client import Client

base = sys.argv[1]
config = os.path.join(base, "config.toml")
with open(config, "w") as fh:
    fh.write(f'root = "{base}/root"\nstate = "{base}/state"\n[websocket]\naddress = "127.0.0.1:0"\n')

def watch():
    seen = []
    deadline = time.monotonic() + 30
    while "actors.server.daemon" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.001)  # main() imports it once the collector is off
    while time.monotonic() < deadline:
        seen.append(gc.isenabled())
        try:
            with Client(os.path.join(base, "state", "dockyard.sock"), timeout=2) as c:
                c.call("Version.Version")
            break
        except Exception:
            time.sleep(0.005)
    print("while starting:", seen[0], "serving:", gc.isenabled(), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
print("exit:", main(["--config", config]), "after:", gc.isenabled(), flush=True)
"""


def test_gc_is_off_while_starting_and_on_once_serving(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["while starting: False serving: True", "exit: 0 after: True"]


def test_gc_is_on_again_when_start_up_fails(tmp_path, capsys):
    assert gc.isenabled()
    assert main(["--config", str(tmp_path / "missing.toml")]) != 0
    assert gc.isenabled()
