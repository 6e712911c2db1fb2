"""Start-up pays only for what serving needs: big optional libraries load on first use."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LOADED_ON_FIRST_USE = ("httpx", "trio_websocket", "wsproto", "pyroute2")


def test_the_daemon_and_its_plugins_import_no_optional_library():
    code = ("import json, sys, actors.server.main, actors.builtin; "
            f"print(json.dumps([m for m in {LOADED_ON_FIRST_USE!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
