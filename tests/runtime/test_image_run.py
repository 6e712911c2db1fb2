"""run from an imported image: snapshot prepared by the smart client, spec from the image config."""

from __future__ import annotations

from tests.runtime.helpers import needs_runc
from tests.support.images import write_busybox_image

pytestmark = needs_runc


def test_run_image_uses_its_config_and_snapshot(rt, tmp_path):
    tar = tmp_path / "busybox.tar"
    write_busybox_image(str(tar), "docker.io/library/busybox:latest", cmd=("sh", "-c", "echo from-image-cmd"),
                        env=["PATH=/bin", "IMG=1"])
    rt.cli("images", "import", str(tar))
    r = rt.cli("run", "--rm", "busybox", "img1", check=False)
    assert (r.returncode, r.stdout) == (0, b"from-image-cmd\n"), r.stderr
    r = rt.cli("run", "--rm", "docker.io/library/busybox:latest", "img2", "sh", "-c",
               "echo $IMG; touch /written && echo ok", check=False)
    assert (r.returncode, r.stdout) == (0, b"1\nok\n"), r.stderr
    # without --rm the container keeps its snapshot; rm removes both
    rt.cli("run", "busybox", "img3", "true")
    record = rt.daemon.call("Containers.Get", {"id": "img3"})
    assert record["snapshotter"] and record["snapshot_key"] == "img3"
    assert record["image"] == "docker.io/library/busybox:latest"
    rt.daemon.call("Snapshots.Stat", {"snapshotter": record["snapshotter"], "key": "img3"})
    rt.cli("containers", "rm", "img3")
    with rt.daemon.client() as c:
        keys = [s["name"] for s in c.stream("Snapshots.List", {"snapshotter": record["snapshotter"]})]
    assert keys  # the image's layer snapshot stays
    assert "img3" not in keys and "img1" not in keys and "img2" not in keys
