"""Process checks for tests (no init reaps orphans here, so a zombie counts as gone)."""


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie, or a process gone mid-read, is not alive."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
