"""Images: records in meta.db (``NamespacedImages``), the ``Images`` RPC service, and unpack."""

from .records import Image
from .store import NamespacedImages

__all__ = ["Image", "NamespacedImages"]
