import subprocess
import sys

import pytest

from oci.descriptor import Descriptor, Platform
from oci.manifest import ImageConfig, Manifest
from wire import converter
from wire.errdefs import InvalidArgument


def test_oci_never_imports_trio():
    code = (
        "import sys\n"
        "import oci.archive, oci.platforms, oci.identity, oci.manifest, oci.mediatypes\n"
        "assert 'trio' not in sys.modules, 'oci pulled in trio'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_value_types_cross_the_wire():
    desc = Descriptor(
        media_type="application/vnd.oci.image.manifest.v1+json", digest="sha256:" + "a" * 64, size=3,
        urls=("https://example.com/x",), annotations={"k": "v"},
        platform=Platform(os="linux", architecture="arm", variant="v7", os_features=("f",)),
    )
    manifest = Manifest(config=desc, layers=(desc, desc), annotations={"a": "b"})
    config = ImageConfig(os="linux", architecture="amd64", cmd=("sh",), labels={"x": "y"}, diff_ids=("sha256:" + "b" * 64,))
    for value in (desc, manifest, config):
        assert converter.structure(converter.unstructure(value), type(value)) == value
    assert hash(desc) == hash(Descriptor.from_json(desc.to_json()))


def test_wire_structuring_stays_strict():
    good = converter.unstructure(Descriptor(media_type="a/b", digest="sha256:" + "a" * 64, size=1))
    for field, bad in (("urls", [1]), ("annotations", {"k": 1}), ("size", "1")):
        with pytest.raises(InvalidArgument, match="Descriptor"):
            converter.structure({**good, field: bad}, Descriptor)
