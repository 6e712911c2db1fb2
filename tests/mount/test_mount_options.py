"""Pure parts of the mount helper: option parsing, mountinfo, the Mount value."""

import string

from hypothesis import given
from hypothesis import strategies as st

from actors.mount import Mount, parse_mountinfo, parse_options
from actors.mount.mountinfo import mounts_under
from actors.mount.options import (
    FLAG_OPTIONS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SHARED,
    PROPAGATION_OPTIONS,
)


def test_flags_propagation_and_data_are_split():
    parsed = parse_options(["ro", "rbind", "nosuid", "nodev", "noexec", "rprivate",
                            "lowerdir=/a:/b", "index=off"])
    assert parsed.flags == MS_RDONLY | MS_BIND | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC
    assert parsed.propagation == MS_PRIVATE | MS_REC
    assert parsed.data == "lowerdir=/a:/b,index=off"


def test_later_option_clears_earlier_flag():
    assert parse_options(["ro", "rw"]).flags == 0
    assert parse_options(["rw", "ro"]).flags == MS_RDONLY
    assert parse_options(["nosuid", "suid", "remount"]).flags == MS_REMOUNT
    assert parse_options(["shared", "bind"]).propagation == MS_SHARED
    assert parse_options([]).data == ""


data_option = st.text(string.ascii_lowercase + "=/:0123456789", min_size=1).filter(
    lambda o: o not in FLAG_OPTIONS and o not in PROPAGATION_OPTIONS)


@given(st.lists(st.one_of(st.sampled_from(sorted(FLAG_OPTIONS)), st.sampled_from(sorted(PROPAGATION_OPTIONS)),
                          data_option)))
def test_unknown_options_reach_data_in_order(options):
    parsed = parse_options(options)
    assert parsed.data == ",".join(o for o in options if o not in FLAG_OPTIONS and o not in PROPAGATION_OPTIONS)
    assert parsed.flags & ~(2**32 - 1) == 0
    # the last of ro/rw wins
    rw = [o for o in options if o in ("ro", "rw")]
    assert bool(parsed.flags & MS_RDONLY) == (bool(rw) and rw[-1] == "ro")


def test_mount_value_normalises_options_to_a_tuple():
    m = Mount(type="bind", source="/x", options=["ro", "rbind"])
    assert m.options == ("ro", "rbind") and m.readonly() and m.target == ""
    assert Mount(type="tmpfs", source="tmpfs") == Mount(type="tmpfs", source="tmpfs", options=None)
    assert hash(m) == hash(Mount(type="bind", source="/x", options=("ro", "rbind")))


MOUNTINFO = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "90 27 0:50 / /tmp/a\\040b rw - tmpfs tmp\\040fs rw\n"
    "91 90 0:51 / /tmp/a\\040b/in rw shared:5 master:1 - tmpfs tmpfs rw\n"
    "92 27 0:52 / /tmp/a\\040bc rw - tmpfs tmpfs rw\n"
)


def test_mountinfo_parse_unescapes_and_handles_optional_fields():
    points = parse_mountinfo(MOUNTINFO)
    assert [p.mountpoint for p in points] == ["/proc", "/", "/tmp/a b", "/tmp/a b/in", "/tmp/a bc"]
    assert points[2].source == "tmp fs" and points[3].fstype == "tmpfs"
    assert (points[3].mount_id, points[3].parent_id) == (91, 90)


def test_mounts_under_is_path_prefix_aware():
    points = parse_mountinfo(MOUNTINFO)
    assert [p.mountpoint for p in mounts_under("/tmp/a b", points)] == ["/tmp/a b", "/tmp/a b/in"]
    assert [p.mountpoint for p in mounts_under("/tmp/a b/", points)] == ["/tmp/a b", "/tmp/a b/in"]
    assert len(mounts_under("/", points)) == 5


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n"),
               min_size=1))
def test_mountinfo_unescape_inverts_kernel_escaping(name):
    escaped = "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in name)
    line = f"1 0 0:1 / /m/{escaped} rw - tmpfs tmpfs rw\n"
    assert parse_mountinfo(line)[0].mountpoint == f"/m/{name}"
