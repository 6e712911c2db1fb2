"""The smart client's knowledge of OCI formats: pure, synchronous, no Trio.

Submodules are imported on demand so the CLI pays only for what it uses:

- ``mediatypes``: media type constants and role predicates
- ``descriptor`` / ``manifest``: value types and strict parsers, ``children``
- ``platforms``: parse/normalize/format, matchers, ``choose_manifest``
- ``identity``: chain IDs, GC reference labels, label keys
- ``archive`` (+ ``archive_writer``, ``archive_names``): image archives
- ``reference``: image references (parse, normalize, familiarize)
"""
