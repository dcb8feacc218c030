"""A fleet task's work without Ray, on real drives: when a drive (or one chunk of it) that
gives no frame is a failure, and what the failure says."""

from __future__ import annotations

import pytest
from fleet_support import copy_drive, cut_to_header, pipeline_dict, write_pipeline

pytest.importorskip("pyarrow")

from fusionrt.fleet.chunks import ChunkWindow
from fusionrt.fleet.task import PipelineSpec, drive_span_ns, drive_tables, replay_chunk
from fusionrt.runtime.errors import ConfigError, SourceError


def test_a_drive_whose_reference_sensor_gives_nothing_is_a_source_error(drives_dir, tmp_path):
    data = pipeline_dict()
    data["sensors"]["lidar_top"]["plugin"] = "camera"  # its clouds are no images: all lost
    spec = PipelineSpec.load(write_pipeline(tmp_path / "no_reference.yaml", data))
    drive = drives_dir / "drive_a"
    outcome = replay_chunk(spec, drive)
    with pytest.raises(SourceError) as raised:
        drive_tables("drive_a", drive, [outcome], attempts=1)
    assert outcome.detections == [] and outcome.records > 0  # camera and radar were read
    message = str(raised.value)
    assert message.startswith(f"the drive gave no frames from {outcome.records} record(s) read")
    assert "lidar_top decode_error" in message
    assert raised.value.context == {"path": str(drive)}


def test_a_drive_without_a_sensor_topic_fails_naming_the_key(drives_dir, tmp_path):
    data = pipeline_dict()
    data["sensors"]["lidar_top"]["topic"] = "/sensors/lidar_top/point"  # not in the bag
    spec = PipelineSpec.load(write_pipeline(tmp_path / "typo.yaml", data))
    with pytest.raises(ConfigError, match="did you mean '/sensors/lidar_top/points'") as raised:
        replay_chunk(spec, drives_dir / "drive_a")
    assert raised.value.context["key"] == "sensors.lidar_top.topic"


def test_a_bag_with_no_message_names_what_its_source_reported(drives_dir, pipeline_path, tmp_path):
    drive = cut_to_header(copy_drive(drives_dir / "drive_a", tmp_path / "header_only"))
    with pytest.raises(SourceError) as raised:
        replay_chunk(PipelineSpec.load(pipeline_path), drive)
    message = str(raised.value)
    assert "no messages for the pipeline's topics" in message
    assert "; reported: source truncated x1: truncated: the file ends at byte 43" in message


def test_a_chunk_that_reads_nothing_is_empty_not_a_failed_drive(drives_dir, pipeline_path):
    spec = PipelineSpec.load(pipeline_path)
    drive = drives_dir / "drive_b"
    _, last_ns = drive_span_ns(spec, drive)
    context_ns = 1_000_000_000
    split_ns = last_ns + 5 * context_ns  # the second chunk lies beyond the end of the drive
    head = ChunkWindow(0, 2, None, split_ns, None, split_ns + context_ns)
    tail = ChunkWindow(1, 2, split_ns, None, split_ns - context_ns, None)
    whole = replay_chunk(spec, drive)
    outcomes = [replay_chunk(spec, drive, head), replay_chunk(spec, drive, tail)]
    assert outcomes[1].records == 0 and outcomes[1].detections == []
    tables = drive_tables("drive_b", drive, outcomes, attempts=1)
    assert tables.summary["status"] == "ok" and tables.summary["chunks"] == 2
    assert tables.summary["frames"] == len(whole.detections) > 0
