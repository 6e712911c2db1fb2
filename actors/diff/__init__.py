"""The diff engine: apply layer tars to directories, and compare directories
into layer tars.  Plain synchronous code; async callers use
``trio.to_thread.run_sync``.  Everything streams: no layer is held in memory.
"""

from .apply import ApplyResult, apply_layer
from .compare import CompareResult, compare, compare_overlay_upper
from .media import (
    MEDIA_TYPE_TAR,
    MEDIA_TYPE_TAR_GZIP,
    MEDIA_TYPE_TAR_ZSTD,
    Compression,
    layer_compression,
)

__all__ = [
    "ApplyResult",
    "CompareResult",
    "Compression",
    "MEDIA_TYPE_TAR",
    "MEDIA_TYPE_TAR_GZIP",
    "MEDIA_TYPE_TAR_ZSTD",
    "apply_layer",
    "compare",
    "compare_overlay_upper",
    "layer_compression",
]
