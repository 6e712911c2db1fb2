"""``dockyardd``: the daemon's entry point (its life is in ``actors.server.daemon``).

Start-up builds a few hundred thousand objects that live as long as the daemon
(modules, classes, plugin state, the recovered task table), and the cyclic
garbage collector would walk them again and again on the way: ~30 ms of a
restart with 50 running tasks.  So it is off from here until the plugin graph
is loaded (``daemon.serve`` turns it back on), and on again whatever happens.
"""

from __future__ import annotations

import gc
import sys


def main(argv: list[str] | None = None) -> int:
    gc.disable()
    try:
        from actors.server import daemon

        return daemon.run(sys.argv[1:] if argv is None else argv)
    finally:
        gc.enable()


if __name__ == "__main__":
    sys.exit(main())
