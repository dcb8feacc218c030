"""Replay modes: fast (no sleeping), real time paced by stamps, step; the progress bar."""

from __future__ import annotations

import io
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from bag_helpers import drive, write_bag

from fusionrt import RawRecord
from fusionrt.plugins.sources import RecordedSource, Replay, ReplayMode, RosbagSource, TopicInfo
from fusionrt.runtime.errors import ConfigError

START_NS = 1_000_000_000_000


class SyntheticDrive(RecordedSource):
    """A 1 s drive: one record every 50 ms on /a and every 100 ms on /b; counts what it yields."""

    name = "synthetic"

    def __init__(self, seconds: float = 1.0) -> None:
        super().__init__()
        self.records_list = sorted(
            [
                RawRecord("/a", START_NS + i * 50_000_000, b"a")
                for i in range(round(seconds * 20) + 1)
            ]
            + [
                RawRecord("/b", START_NS + i * 100_000_000, b"b")
                for i in range(round(seconds * 10) + 1)
            ],
            key=lambda r: r.stamp_ns,
        )
        self.produced = 0

    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        for record in self.records_list:
            if start_ns is not None and record.stamp_ns < start_ns:
                continue
            self.produced += 1
            yield record

    def topics(self) -> dict[str, TopicInfo]:
        return {"/a": TopicInfo("/a", "", 21), "/b": TopicInfo("/b", "", 11)}

    @property
    def first_stamp_ns(self) -> int:
        return START_NS

    @property
    def last_stamp_ns(self) -> int:
        return START_NS + 1_000_000_000


class FakeClock:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_fast_mode_never_sleeps_and_yields_the_records_unaltered() -> None:
    source, clock = SyntheticDrive(), FakeClock()
    replay = Replay(source, clock=clock, sleep=clock.sleep, progress=False)
    assert replay.mode is ReplayMode.FAST
    out = list(replay)
    assert clock.sleeps == []
    assert len(out) == len(source.records_list)
    assert all(a is b for a, b in zip(out, source.records_list, strict=True))  # same objects
    assert replay.stats.records == 32 and replay.stats.drive_s == pytest.approx(1.0)


def test_realtime_mode_paces_by_stamps_with_rate() -> None:
    source, clock = SyntheticDrive(), FakeClock()
    out = list(Replay(source, "realtime", rate=2.0, clock=clock, sleep=clock.sleep, progress=False))
    assert all(a is b for a, b in zip(out, source.records_list, strict=True))
    assert sum(clock.sleeps) == pytest.approx(0.5)  # 1 s of drive at twice the speed
    assert all(s > 0 for s in clock.sleeps)


def test_realtime_rate_10_takes_a_tenth_of_the_drive_on_the_real_clock() -> None:
    replay = Replay(SyntheticDrive(seconds=1.0), ReplayMode.REALTIME, rate=10.0, progress=False)
    start = time.monotonic()
    count = sum(1 for _ in replay)
    elapsed = time.monotonic() - start
    assert count == 32
    assert 0.08 <= elapsed < 1.0  # behaviour, not a benchmark
    assert replay.stats.slept_s > 0.05


def test_realtime_does_not_wait_for_a_slow_consumer_or_skip() -> None:
    source, clock = SyntheticDrive(), FakeClock()
    replay = Replay(source, "realtime", clock=clock, sleep=clock.sleep, progress=False)
    first = next(replay)
    clock.now += 5.0  # the consumer stalls for 5 s of wall time
    rest = list(replay)
    assert [first, *rest] == source.records_list
    assert clock.sleeps == []  # behind schedule: released at once, none dropped


def test_step_mode_yields_one_at_a_time() -> None:
    source, clock = SyntheticDrive(), FakeClock()
    replay = Replay(source, "step", clock=clock, sleep=clock.sleep, progress=False)
    assert source.produced == 0
    first = next(replay)
    assert source.produced == 1 and first is source.records_list[0]
    assert replay.step(3) == source.records_list[1:4] and source.produced == 4
    # Taken so far: /a and /b at 0 ms, /a at 50 and 100 ms. The next 100 ms of drive time:
    window = replay.advance(100_000_000)
    assert [(r.topic, r.stamp_ns - START_NS) for r in window] == [("/b", 10**8), ("/a", 15 * 10**7)]
    window = replay.advance(100_000_000)
    assert [r.stamp_ns - START_NS for r in window] == [2 * 10**8, 2 * 10**8, 25 * 10**7]
    assert replay.advance(10**9)[-1] is source.records_list[-1]
    assert replay.advance(10**9) == [] and replay.step() == []
    assert clock.sleeps == []


def test_seek_restarts_the_replay_and_its_clock() -> None:
    source, clock = SyntheticDrive(), FakeClock()
    replay = Replay(source, "realtime", clock=clock, sleep=clock.sleep, progress=False)
    replay.step(10)
    replay.seek(START_NS + 900_000_000)
    before = len(clock.sleeps)
    rest = list(replay)
    assert [r.stamp_ns - START_NS for r in rest] == [9 * 10**8] * 2 + [95 * 10**7] + [10**9] * 2
    assert sum(clock.sleeps[before:]) == pytest.approx(0.1)  # paced from the seek point


def test_progress_bar_shows_rate_and_drive_time() -> None:
    stream = io.StringIO()
    with Replay(SyntheticDrive(), progress=True, stream=stream) as replay:
        list(replay)
    text = stream.getvalue()
    assert "32/32" in text and "rec/s" in text and "drive" in text and "/1.00 s" in text
    quiet = io.StringIO()  # not a terminal: no bar unless asked
    list(Replay(SyntheticDrive(), stream=quiet))
    assert quiet.getvalue() == ""


def test_replay_over_a_bag(tmp_path: Path) -> None:
    written = drive(0.5)
    bag = write_bag(tmp_path / "bag", written, "mcap")
    with RosbagSource(bag) as source:
        replay = Replay(source, "realtime", rate=50.0, progress=False)
        records = list(replay)
    assert [(r.topic, r.stamp_ns, bytes(r.data)) for r in records] == [
        (w.topic, w.stamp_ns, w.data) for w in written
    ]
    assert replay.stats.wall_s >= 0.45 / 50


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="rate must be > 0"):
        Replay(SyntheticDrive(), "realtime", rate=0)
    with pytest.raises(ConfigError, match="rate must be > 0"):
        Replay(SyntheticDrive(), rate=float("nan"))
    with pytest.raises(ConfigError, match="unknown replay mode"):
        Replay(SyntheticDrive(), "slow-motion")


def test_a_plain_source_replays_too() -> None:
    """Any runtime Source works; seek needs a source that can seek."""
    from fusionrt.runtime.components import Source

    class Plain(Source):
        name = "plain"

        def records(self) -> Iterator[RawRecord]:
            yield RawRecord("/x", 1, b"")
            yield RawRecord("/x", 2, b"")

    replay = Replay(Plain(), "realtime", rate=1e6, progress=False)
    assert [r.stamp_ns for r in replay] == [1, 2]
    with pytest.raises(ConfigError, match="cannot seek"):
        replay.seek(0)
