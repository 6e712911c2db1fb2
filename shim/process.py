"""Processes of the shim's containers and their lifecycle, as one transition table.

Init and exec processes share the table.  Transitional states (``starting``,
``pausing``, ``resuming``, ``deleting``) cover a runc call in flight: the shim
never holds its loop across runc, so another request may arrive meanwhile and is
judged against the transitional state.  An illegal step raises FailedPrecondition
(NotFound for a kill of a finished process) and changes nothing.
"""

from __future__ import annotations

from wire import errdefs

CREATED, STARTING, RUNNING = "created", "starting", "running"
PAUSING, PAUSED, RESUMING = "pausing", "paused", "resuming"
STOPPED, DELETING, DELETED = "stopped", "deleting", "deleted"

# What ``Task.State`` reports for each state (containerd's status words).
STATUS = {CREATED: "created", STARTING: "created", RUNNING: "running", PAUSING: "pausing",
          PAUSED: "paused", RESUMING: "paused", STOPPED: "stopped", DELETING: "stopped",
          DELETED: "stopped"}

# state -> {action: next state}.  Actions that only check (kill, exec) keep the state.
TRANSITIONS: dict[str, dict[str, str]] = {
    CREATED: {"start": STARTING, "delete": DELETING, "exit": STOPPED, "kill": CREATED, "exec": CREATED},
    STARTING: {"started": RUNNING, "start_failed": CREATED, "kill": STARTING, "exec": STARTING},
    RUNNING: {"pause": PAUSING, "exit": STOPPED, "kill": RUNNING, "exec": RUNNING},
    PAUSING: {"paused": PAUSED, "pause_failed": RUNNING, "exit": STOPPED, "kill": PAUSING},
    PAUSED: {"resume": RESUMING, "exit": STOPPED, "kill": PAUSED},
    RESUMING: {"resumed": RUNNING, "resume_failed": PAUSED, "exit": STOPPED, "kill": RESUMING},
    STOPPED: {"delete": DELETING},
    DELETING: {"deleted": DELETED, "exit": DELETING},
    DELETED: {},
}

# The state a failed delete goes back to is the one it started from.
_LIVE = (STARTING, RUNNING, PAUSING, PAUSED, RESUMING)


class Process:
    """One init or exec process; ``exec_id`` is "" for the init."""

    __slots__ = ("container_id", "exec_id", "bundle", "state", "pid", "exit_status", "exited_at",
                 "stdin", "stdout", "stderr", "terminal", "spec", "io", "waiters", "pending_exit",
                 "_before_delete")

    def __init__(self, container_id: str, exec_id: str, bundle: str, *, stdin: str = "", stdout: str = "",
                 stderr: str = "", terminal: bool = False, spec: dict | None = None) -> None:
        self.container_id = container_id
        self.exec_id = exec_id
        self.bundle = bundle
        self.state = CREATED
        self.pid = 0
        self.exit_status = 0
        self.exited_at = 0
        self.stdin, self.stdout, self.stderr, self.terminal = stdin, stdout, stderr, terminal
        self.spec = spec
        self.io = None  # shim.io.ProcessIO once started/created
        self.waiters: list = []  # Futures resolved at exit
        self.pending_exit: tuple[int, int] | None = None  # an exit seen while starting
        self._before_delete = CREATED

    @property
    def name(self) -> str:
        return f"{self.container_id}/{self.exec_id}" if self.exec_id else self.container_id

    @property
    def status(self) -> str:
        return STATUS[self.state]

    @property
    def live(self) -> bool:
        """Started (or starting) and not yet exited."""
        return self.state in _LIVE

    @property
    def exited(self) -> bool:
        return self.state in (STOPPED, DELETING, DELETED) and self.exited_at != 0

    def check(self, action: str) -> str:
        """The state ``action`` leads to; raises the typed error when it is not allowed now."""
        nxt = TRANSITIONS[self.state].get(action)
        if nxt is not None:
            return nxt
        if self.state == DELETED:
            raise errdefs.NotFound(f"process {self.name!r}: not found")
        if action == "kill":
            raise errdefs.NotFound(f"process {self.name!r}: already finished")
        raise errdefs.FailedPrecondition(f"process {self.name!r}: cannot {action} while {self.status}")

    def apply(self, action: str) -> None:
        nxt = self.check(action)
        if action == "delete":
            self._before_delete = self.state
        self.state = nxt

    def undo_delete(self) -> None:
        """A delete that failed leaves the process as it found it (stopped if it exited meanwhile)."""
        if self.state == DELETING:
            self.state = STOPPED if self.exited_at else self._before_delete


class Container:
    """A container served by this shim: its bundle, runc, init and execs."""

    __slots__ = ("id", "bundle", "runc", "init", "execs", "mounted", "oom", "deferred_init_exit")

    def __init__(self, cid: str, bundle: str, runc, init: Process) -> None:
        self.id = cid
        self.bundle = bundle
        self.runc = runc
        self.init = init
        self.execs: dict[str, Process] = {}
        self.mounted = False
        self.oom = None
        self.deferred_init_exit: tuple[int, int] | None = None

    def process(self, exec_id: str) -> Process:
        if not exec_id:
            return self.init
        try:
            return self.execs[exec_id]
        except KeyError:
            raise errdefs.NotFound(f"process {self.id}/{exec_id}: not found") from None

    def live_execs(self) -> list[Process]:
        return [p for p in self.execs.values() if p.live]
