"""The mount package's public names all come from its one __init__."""

import actors.mount as mount


def test_public_names_are_exported_and_exist():
    assert len(mount.__all__) == len(set(mount.__all__))
    for name in mount.__all__:
        assert getattr(mount, name) is not None, name
    assert {"Mount", "mount_all", "unmount", "unmount_all", "temp_mount",
            "overlay_supports_index_option"} <= set(mount.__all__)
