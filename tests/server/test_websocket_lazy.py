"""The websocket port is bound at start-up; trio-websocket is loaded only when the first client knocks."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import sys, tempfile, trio
from actors.server.websocket import WebsocketServer

async def main():
    addr_file = tempfile.mkdtemp() + "/websocket.addr"
    server = WebsocketServer(events=None, host="127.0.0.1", port=0, token="t", addr_file=addr_file)
    async with trio.open_nursery() as nursery:
        server.nursery = nursery
        await server.on_start()
        host, port = open(addr_file).read().strip().rsplit(":", 1)
        await trio.sleep(0.05)
        print("loaded before a client:", "trio_websocket" in sys.modules)
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        with trio.fail_after(10):
            answer = await stream.receive_some(4096)
        print("answer:", answer.split(b"\r\n")[0].decode())
        print("loaded after a client:", "trio_websocket" in sys.modules, server.refused)
        await stream.aclose()
        nursery.cancel_scope.cancel()

trio.run(main)
"""


def test_trio_websocket_loads_on_the_first_client_which_is_served():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "loaded before a client: False"
    assert lines[1].startswith("answer: HTTP/1.1 404")
    assert lines[2] == "loaded after a client: True 1"


def test_importing_the_plugin_does_not_import_trio_websocket():
    code = "import sys, actors.server.websocket; print('trio_websocket' in sys.modules, 'wsproto' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
