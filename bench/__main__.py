"""``python -m bench [NAME...]``: run the named workloads (default: all) one after another.

Each workload is a script in this directory with a ``main()``; it prints its own
figures as medians next to containerd's, measured in the same run.
"""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"__main__", "support", "__init__"}


def main(argv: list[str]) -> int:
    available = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SKIP)
    names = argv or available
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown workloads {unknown}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    for name in names:
        print(f"\n## {name}", flush=True)
        runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
