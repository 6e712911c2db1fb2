"""Shared fixtures: a real daemon in a temp root, and a check that nothing outlives the run."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import settings

from tests.support.daemon import Daemon

# Performance is measured in bench/, never in tests: no per-example deadline (a loaded CI machine
# stalled one round trip of a codec property for 1.2 s, and hypothesis calls that a failure).
settings.register_profile("dockyard", deadline=None)
settings.load_profile("dockyard")


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path / "dockyard").start()
    try:
        yield d
    finally:
        if d.proc is not None:
            d.stop()


@pytest.fixture
def make_daemon(tmp_path):
    """Factory for tests that need their own config or several daemons."""
    made: list[Daemon] = []

    def make(name: str = "dockyard", **kw) -> Daemon:
        d = Daemon(tmp_path / name, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc is not None:
            try:
                d.stop(timeout=15)  # a clean stop also retires the daemon's spare shims
            except Exception:
                d.kill9()


def _leftovers(base: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mountpoint = line.split()[4]
            if mountpoint.startswith(base):
                found.append(f"mount {mountpoint}")
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in ps.splitlines():
        if base in line and ("dockyard" in line or "runc" in line or "registry" in line):
            found.append(f"process {line.strip()}")
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(tmp_path_factory):
    """Fail the run if any test left a mount or a process under the test temp dir."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    leftovers = _leftovers(base)
    if leftovers:
        pytest.fail("left behind by the tests:\n" + "\n".join(leftovers), pytrace=False)
