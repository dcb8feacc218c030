"""A drive is opened by the registered source that says it can (``can_open``), whatever its
kind: bags written by rosbags' writer (with and without metadata.yaml, a drive folder holding
bag/), the real KITTI and nuScenes samples, and a third-party source installed as a package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bag_helpers import drive, storage_file, write_bag

from fusionrt.plugins.sources import KittiSource, NuScenesSource, RosbagSource
from fusionrt.runtime.errors import ConfigError, PluginError
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.source_select import can_open, open_source, source_class

REPO = Path(__file__).resolve().parents[3]

#: A third-party source: a flat folder of Velodyne scans (``scan_<stamp ns>.bin``) and a rig.
FLAT_SCANS = """
from pathlib import Path
from fusionrt import RawRecord, hookimpl
from fusionrt.calibration import Rig
from fusionrt.plugins.sources import RecordedSource, TopicInfo

class FlatScans(RecordedSource):
    name = "flat_scans"
    opens = "a folder of scan_<ns>.bin files"

    @classmethod
    def can_open(cls, path):
        return Path(path).is_dir() and any(Path(path).glob("scan_*.bin"))

    def __init__(self, path, *, topics=None):
        super().__init__(topics=topics)
        self.root = Path(path)
        self.files = sorted(self.root.glob("scan_*.bin"), key=lambda p: int(p.stem[5:]))
        self._check_topic_filter(self.topics())

    def topics(self):
        return {"scans": TopicInfo("scans", "fusionrt/kitti_bin", len(self.files))}

    @property
    def first_stamp_ns(self):
        return int(self.files[0].stem[5:])

    @property
    def last_stamp_ns(self):
        return int(self.files[-1].stem[5:])

    def rig(self):
        return Rig.load(self.root / "rig.yaml")

    def _read(self, start_ns, stop_ns):
        for file in self.files:
            stamp = int(file.stem[5:])
            if self.in_window(stamp, start_ns, stop_ns) and self.wants("scans"):
                yield RawRecord("scans", stamp, file.read_bytes(), "fusionrt/kitti_bin", str(file))

@hookimpl
def fusionrt_sources():
    return [FlatScans]
"""

#: A third-party source claiming every folder holding training/ (as KITTI does).
GREEDY = """
from pathlib import Path
from fusionrt import hookimpl
from fusionrt.plugins.sources import KittiSource

class Greedy(KittiSource):
    name = "greedy"
    opens = "any folder holding training/"

    @classmethod
    def can_open(cls, path):
        return (Path(path) / "training").is_dir()

@hookimpl
def fusionrt_sources():
    return [Greedy]
"""

BROKEN = """
from fusionrt import hookimpl
from fusionrt.plugins.sources import KittiSource

class Broken(KittiSource):
    name = "broken"

    @classmethod
    def can_open(cls, path):
        raise RuntimeError("looked at the wrong thing")

@hookimpl
def fusionrt_sources():
    return [Broken]
"""


def _fusionrt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusionrt.runtime.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture
def registry() -> Registry:
    return Registry.create(entry_points=False)


def _bags(tmp_path: Path) -> dict[str, Path]:
    """The ways a bag written by rosbags' writer reaches ``--source``."""
    bag = write_bag(tmp_path / "bag", drive(0.5))
    bare = tmp_path / "crashed"  # a recorder that died before writing metadata.yaml
    bare.mkdir()
    shutil.copy(storage_file(bag), bare)
    sim_like = tmp_path / "drive"  # fusionrt sim's layout: DRIVE/bag/
    shutil.copytree(bag, sim_like / "bag")
    return {"bag": bag, "no_metadata": bare, "file": storage_file(bag), "drive": sim_like}


def test_every_kind_of_drive_is_opened_by_its_source(
    registry: Registry, real_data: Path, tmp_path: Path
) -> None:
    bags = _bags(tmp_path)
    expected = {
        **{path: RosbagSource for path in bags.values()},
        real_data / "kitti": KittiSource,
        real_data / "kitti" / "training": KittiSource,
        real_data / "nuscenes": NuScenesSource,
    }
    full = [(r.topic, r.stamp_ns) for r in RosbagSource(bags["bag"]).records()]
    for path, cls in expected.items():
        assert source_class(path, registry) is cls, path
        with open_source(path, registry, None) as source:
            records = [(r.topic, r.stamp_ns) for r in source.records()]
            assert records, path
            if cls is RosbagSource:  # the same messages, however the bag is given
                assert records == full, path


def test_a_bag_folder_without_metadata_yaml_runs(tmp_path: Path) -> None:
    """``fusionrt run`` refused it ("cannot tell what kind of drive this is")."""
    bags = _bags(tmp_path)
    pipeline = {
        "sensors": {"lidar": {"plugin": "lidar", "topic": "/lidar"}},
        "sensors_in_ego_frame": True,
        "sync": {"policy": "collector", "reference": "lidar", "tolerance_ms": 20},
        "model": {"name": "reference"},
        "sinks": [{"name": "jsonl"}],
    }
    path = tmp_path / "lidar.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    done = _fusionrt(
        "run", str(path), "--source", str(bags["no_metadata"]), "--out", str(tmp_path / "out")
    )
    assert done.returncode == 0, done.stderr
    assert "frames 5," in done.stdout
    assert len((tmp_path / "out" / "detections.jsonl").read_text().splitlines()) == 5


def test_source_kind_chooses_and_an_unknown_one_is_named(
    registry: Registry, real_data: Path
) -> None:
    assert source_class(real_data / "kitti", registry, "kitti") is KittiSource
    with pytest.raises(ConfigError, match=r"no source 'kiti' reads recordings") as error:
        source_class(real_data / "kitti", registry, "kiti")
    assert error.value.context["key"] == "--source-kind"
    assert "kitti, nuscenes, rosbag" in str(error.value)


def test_no_source_that_can_lists_what_each_reads(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a drive")
    with pytest.raises(ConfigError, match="no installed source can open this drive") as error:
        open_source(tmp_path, registry, None)
    message = str(error.value)
    assert "kitti: a KITTI folder" in message and "nuscenes: a nuScenes folder" in message
    assert "rosbag: a ROS 2 bag" in message and error.value.context["path"] == str(tmp_path)
    with pytest.raises(ConfigError, match="no drive at this path"):
        open_source(tmp_path / "missing", registry, None)


def test_two_sources_that_can_is_an_error_naming_both(make_distribution, real_data: Path) -> None:
    make_distribution("acme-greedy", {"greedy": "acme_greedy"}, {"acme_greedy": GREEDY})
    registry = Registry.create()
    with pytest.raises(ConfigError, match="several sources can open this drive") as error:
        open_source(real_data / "kitti", registry, None)
    assert "greedy (acme-greedy)" in str(error.value) and "kitti (fusionrt)" in str(error.value)
    with open_source(real_data / "kitti", registry, None, "greedy") as source:
        assert type(source).name == "greedy" and len(list(source.records())) == 4
    # the training folder itself is KITTI's only
    assert source_class(real_data / "kitti" / "training", registry) is KittiSource


def test_a_can_open_that_raises_names_the_plugin(make_distribution, tmp_path: Path) -> None:
    make_distribution("acme-broken", {"broken": "acme_broken"}, {"acme_broken": BROKEN})
    registry = Registry.create()
    with pytest.raises(PluginError, match="source 'broken': can_open raised RuntimeError") as e:
        open_source(tmp_path, registry, None)
    assert e.value.context["distribution"] == "acme-broken"


def test_a_third_party_source_is_reached_by_fusionrt_run(
    make_distribution, real_data: Path, tmp_path: Path
) -> None:
    site = make_distribution("acme-scans", {"scans": "acme_scans"}, {"acme_scans": FLAT_SCANS})
    scans = tmp_path / "scans"
    scans.mkdir()
    for stamp in (1_000_000_000, 1_100_000_000):
        shutil.copy(real_data / "kitti/training/velodyne/000001.bin", scans / f"scan_{stamp}.bin")
    shutil.copy(REPO / "examples/rigs/kitti_2011_09_26.yaml", scans / "rig.yaml")
    assert can_open(scans, Registry.create()) and not can_open(scans, Registry.create(), "kitti")
    pipeline = {
        "sensors": {"lidar": {"plugin": "lidar", "topic": "scans"}},
        "sync": {"policy": "collector", "reference": "lidar", "tolerance_ms": 20},
        "model": {"name": "reference"},
        "sinks": [{"name": "jsonl"}],
    }
    path = tmp_path / "scans.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    done = _fusionrt(
        "run", str(path), "--source", str(scans), "--out", str(tmp_path / "out"), env=env
    )
    assert done.returncode == 0, done.stderr
    assert "frames 2," in done.stdout and "the drive has no ground truth" in done.stdout
