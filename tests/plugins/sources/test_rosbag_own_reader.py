"""Why the rosbag source reads bags itself: rosbags' reader raises on a bag cut short (a
recorder killed, a copy interrupted), where the source replays what the file still holds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from bag_helpers import POINTCLOUD2, Written, pointcloud2, storage_file, write_bag
from rosbags.rosbag2 import Reader, ReaderError

from fusionrt.plugins.sources import BadRecord, RosbagSource

START_NS = 1_700_000_000_000_000_000


def test_a_cut_bag_replays_up_to_the_cut_where_rosbags_reader_raises(
    tmp_path: Path, storage: str
) -> None:
    rng = np.random.default_rng(5)
    written = [  # 32 KiB sweeps: an MCAP file of several 1 MiB chunks
        Written("/lidar", POINTCLOUD2, t, pointcloud2(t, rng.normal(size=(2000, 4))))
        for t in range(START_NS, START_NS + 100 * 100_000_000, 100_000_000)
    ]
    bag = write_bag(tmp_path / "bag", written, storage)
    file = storage_file(bag)
    os.truncate(file, file.stat().st_size * 6 // 10)

    with pytest.raises(ReaderError), Reader(bag) as reader:
        for _ in reader.messages():
            pass

    bad: list[BadRecord] = []
    with RosbagSource(bag, on_bad_record=bad.append) as source:
        replayed = [(r.topic, r.stamp_ns, bytes(r.data)) for r in source.records()]
    expected = [(w.topic, w.stamp_ns, w.data) for w in written]
    assert 30 <= len(replayed) < len(written)
    assert replayed == [m for m in expected if m in replayed]  # in order, each as written
    assert "truncated" in {b.reason for b in bad}
