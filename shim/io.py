"""A process's stdio: FIFOs, a log file or nothing; a pty through runc's console socket.

Without a terminal the container writes straight into the client's stdout/stderr
FIFOs (opened O_RDWR by the shim, so writes never fail while no reader is
attached) or into the ``file://`` log; no bytes pass through the shim.  Stdin goes
through a pipe the shim feeds from the stdin FIFO, so the shim can close it
(CloseIO, or the client's end closing) and the process sees EOF.  With a terminal
runc hands the pty master over the console socket (SCM_RIGHTS) and the shim copies
stdin FIFO → master → stdout FIFO.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Callable

from wire import errdefs

from .loop import EPOLLIN, EPOLLOUT

CHUNK = 32 * 1024


def _open_fifo(path: str, flags: int, role: str) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errdefs.NotFound(f"{role} {path!r}: no such file") from None
    except OSError as e:
        raise errdefs.InvalidArgument(f"{role} {path!r}: {e.strerror}") from None


def _open_output(uri: str, role: str) -> int:
    """The fd a process writes ``role`` into: a FIFO (O_RDWR) or an append-only file."""
    if uri.startswith("file://"):
        path = uri[len("file://"):]
        if not os.path.isabs(path):
            raise errdefs.InvalidArgument(f"{role} {uri!r}: file path must be absolute")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    if "://" in uri:
        raise errdefs.NotImplemented_(f"{role} {uri!r}: scheme not supported")
    return _open_fifo(uri, os.O_RDWR, role)


class Copier:
    """Moves bytes from ``src`` to ``dst`` (both non-blocking) without blocking the loop."""

    def __init__(self, loop, src: int, dst: int, *, on_eof: Callable[["Copier"], None]) -> None:
        self.loop, self.src, self.dst = loop, src, dst
        self._buf = b""
        self._on_eof = on_eof
        self.closed = False
        os.set_blocking(src, False)
        os.set_blocking(dst, False)
        loop.watch(src, EPOLLIN, self._readable)

    def _readable(self, _events: int) -> None:
        try:
            data = os.read(self.src, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: the pty's other side is gone
            data = b"" if e.errno == errno.EIO else None
            if data is None:
                raise
        if not data:
            self.finish()
            return
        self._buf = data
        self._flush()

    def _flush(self, _events: int = 0) -> None:
        while self._buf:
            try:
                n = os.write(self.dst, self._buf)
            except BlockingIOError:
                self.loop.unwatch(self.src)
                self.loop.watch(self.dst, EPOLLOUT, self._flush)
                return
            except OSError:  # EPIPE / EIO: nobody will read this any more
                self._buf = b""
                self.finish()
                return
            self._buf = self._buf[n:]
        self.loop.unwatch(self.dst)
        if not self.closed:
            self.loop.watch(self.src, EPOLLIN, self._readable)

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.unwatch(self.src)
        self.loop.unwatch(self.dst)
        self._on_eof(self)


class ConsoleSocket:
    """The unix socket runc sends the pty master to (``--console-socket``)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"pty-{os.urandom(6).hex()}.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self._sock.listen(1)

    def receive(self, timeout: float = 5.0) -> int:
        """The master fd runc sent (runc has exited by now, so it is already queued)."""
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except socket.timeout:
            raise errdefs.Internal("console socket: runc sent no terminal") from None
        with conn:
            conn.settimeout(timeout)
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        if not fds:
            raise errdefs.Internal("console socket: no file descriptor received")
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]

    def close(self) -> None:
        self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class ProcessIO:
    """The stdio of one process: what runc gets, and what the shim keeps feeding."""

    def __init__(self, loop, *, stdin: str, stdout: str, stderr: str, terminal: bool, console_dir: str) -> None:
        self.loop = loop
        self.terminal = terminal
        self._for_runc: list[int] = []  # fds handed to runc, closed once it ran
        self._kept: list[int] = []
        self._stdin_fifo: int | None = None
        self._stdin_pipe: int | None = None
        self._stdout_fd: int | None = None
        self.master: int | None = None
        self.console: ConsoleSocket | None = None
        self.copiers: list[Copier] = []
        try:
            self._open(stdin, stdout, stderr, console_dir)
        except BaseException:
            self.close()
            raise

    def _open(self, stdin: str, stdout: str, stderr: str, console_dir: str) -> None:
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._for_runc.append(devnull)
        if stdin:
            self._stdin_fifo = _open_fifo(stdin, os.O_RDONLY | os.O_NONBLOCK, "stdin")
        if self.terminal:
            self.console = ConsoleSocket(console_dir)
            if stdout:
                self._stdout_fd = _open_output(stdout, "stdout")
            self.runc_stdio = (devnull, devnull, devnull)
            return
        fd0 = devnull
        if self._stdin_fifo is not None:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._for_runc.append(r)
            self._stdin_pipe = w
            fd0 = r
        fd1 = _open_output(stdout, "stdout") if stdout else devnull
        if fd1 != devnull:
            self._for_runc.append(fd1)
        if stderr and stderr == stdout and stdout.startswith("file://"):
            fd2 = fd1
        else:
            fd2 = _open_output(stderr, "stderr") if stderr else devnull
            if fd2 != devnull:
                self._for_runc.append(fd2)
        self.runc_stdio = (fd0, fd1, fd2)

    @property
    def console_path(self) -> str | None:
        return self.console.path if self.console else None

    def started(self) -> None:
        """runc has run: drop our copies of its fds; start feeding stdin and the terminal."""
        for fd in self._for_runc:
            os.close(fd)
        self._for_runc = []
        if self.console is not None:
            try:
                self.master = self.console.receive()
            finally:
                self.console.close()
                self.console = None
            if self._stdout_fd is not None:
                self.copiers.append(Copier(self.loop, self.master, self._stdout_fd, on_eof=self._output_done))
            if self._stdin_fifo is not None:
                to_master = os.dup(self.master)
                self.copiers.append(Copier(self.loop, self._stdin_fifo, to_master, on_eof=self._stdin_done))
        elif self._stdin_fifo is not None:
            self.copiers.append(Copier(self.loop, self._stdin_fifo, self._stdin_pipe, on_eof=self._stdin_done))

    def _stdin_done(self, copier: Copier) -> None:
        _close(copier.src)
        _close(copier.dst)  # the pipe's write end (or a dup of the master)
        self._stdin_fifo = self._stdin_pipe = None

    def _output_done(self, copier: Copier) -> None:
        _close(copier.dst)
        self._stdout_fd = None

    def close_stdin(self) -> None:
        for copier in self.copiers:
            if copier.src == self._stdin_fifo:
                copier.finish()
                return
        for fd in (self._stdin_fifo, self._stdin_pipe):
            _close(fd)
        self._stdin_fifo = self._stdin_pipe = None

    def resize(self, width: int, height: int) -> None:
        if self.master is None:
            raise errdefs.FailedPrecondition("process has no terminal to resize")
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def process_exited(self) -> None:
        """The process is gone: stdin has nobody to feed.  Terminal output drains until EIO."""
        self.close_stdin()

    def close(self) -> None:
        for copier in self.copiers:
            copier.finish()
        self.copiers = []
        for fd in self._for_runc:
            _close(fd)
        self._for_runc = []
        for fd in (self._stdin_fifo, self._stdin_pipe, self._stdout_fd, self.master):
            _close(fd)
        self._stdin_fifo = self._stdin_pipe = self._stdout_fd = self.master = None
        if self.console is not None:
            self.console.close()
            self.console = None


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
