"""Run a real ``dockyardd`` in a temp root for integration tests.

    d = Daemon(tmp_path).start()
    d.call("Namespaces.List")
    d.cli("namespaces", "ls")
    d.kill9(); d.start()     # crash and restart on the same root
    d.stop()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomli_w

from wire.client import Client

BIN = Path(sys.executable).parent


class Daemon:
    def __init__(self, base: Path, *, config: dict | None = None, namespace: str = "default") -> None:
        self.base = Path(base)
        self.root = self.base / "root"
        self.state = self.base / "state"
        self.address = str(self.state / "dockyard.sock")
        self.config_path = self.base / "config.toml"
        self.namespace = namespace
        cfg = {"root": str(self.root), "state": str(self.state),
               "websocket": {"address": "127.0.0.1:0"}}
        for key, value in (config or {}).items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        self.base.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(tomli_w.dumps(cfg))
        self.proc: subprocess.Popen | None = None
        self.log_path = self.base / "dockyardd.log"

    # -- life -----------------------------------------------------------------------

    def start(self, *extra: str, wait: bool = True, timeout: float = 20.0) -> "Daemon":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "dockyardd"), "--config", str(self.config_path), "--log-level", "debug", *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:  # a daemon that never came up must not outlive the test
                self.kill9()
                raise
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with Client(self.address, timeout=2) as c:
                    c.call("Version.Version")
                return
            except Exception:
                time.sleep(0.05)
        raise TimeoutError(f"dockyardd did not become ready in {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    # -- talking to it -------------------------------------------------------------

    def client(self, **kw) -> Client:
        kw.setdefault("namespace", self.namespace)
        kw.setdefault("timeout", 30)
        return Client(self.address, **kw).connect()

    def call(self, method: str, params: dict | None = None, **meta):
        with self.client() as c:
            return c.call(method, params, **meta)

    def cli(self, *args: str, input: bytes | None = None, check: bool = True,
            timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "DOCKYARD_ADDRESS": self.address, "DOCKYARD_NAMESPACE": self.namespace,
                    **(env or {})}
        result = subprocess.run([str(BIN / "dockyard"), *args], input=input, capture_output=True,
                                timeout=timeout, env=full_env)
        if check and result.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stderr.decode(errors='replace')}")
        return result

    @property
    def websocket_address(self) -> str:
        return (self.state / "websocket.addr").read_text().strip()

    @property
    def token(self) -> str:
        return (self.state / "events.token").read_text().strip()
