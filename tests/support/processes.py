"""Process checks for tests (no init reaps orphans here, so a zombie counts as gone)."""


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie, or a process gone mid-read, is not alive."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def run_with_stderr_on_a_terminal(argv: list[str], **kwargs):
    """``subprocess.run(argv, stdout=PIPE)`` with stderr on a pseudo-terminal; returns (proc, what it showed)."""
    import os
    import pty
    import subprocess

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=secondary, **kwargs)
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other end is closed and everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    return proc, shown
