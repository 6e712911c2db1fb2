"""Child process for the crash tests: run one collection and stop dead at a chosen point.

    python tests/gc/crash_child.py ROOT after-commit|while-marking|mid-backend

It touches ROOT/reached when it gets there, then sleeps until the parent kills it.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import trio  # noqa: E402

import actors.gc.backend as backend_mod  # noqa: E402
import actors.gc.collector as collector_mod  # noqa: E402
from actors.content import LocalStore  # noqa: E402
from actors.gc import Collector  # noqa: E402
from actors.metadata.db import MetadataDB  # noqa: E402
from tests.gc.gc_helpers import FakeMetadata  # noqa: E402


def stop_here(root: str) -> None:
    open(os.path.join(root, "reached"), "w").close()
    time.sleep(120)


def main(root: str, point: str) -> None:
    db = MetadataDB(os.path.join(root, "meta.db"))
    store = LocalStore(os.path.join(root, "content"))
    after_commit = None
    if point == "after-commit":
        after_commit = lambda: stop_here(root)  # noqa: E731
    elif point == "while-marking":
        original = collector_mod._mark_snapshot

        def marking(reader):
            result = original(reader)
            stop_here(root)
            return result

        collector_mod._mark_snapshot = marking
    elif point == "mid-backend":
        real_unlink_many = backend_mod.unlink_many

        def unlink_some(paths):
            real_unlink_many(paths[:7])
            stop_here(root)

        backend_mod.unlink_many = unlink_some
    trio.run(Collector(FakeMetadata(db=db, content=store), after_commit=after_commit).collect)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
