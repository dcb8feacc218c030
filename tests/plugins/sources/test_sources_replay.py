"""Replay modes: fast (no sleeping), real time paced by stamps (gaps bounded, stop at once),
step; the progress bar."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from bag_helpers import drive, write_bag

from fusionrt import RawRecord
from fusionrt.plugins.sources import RecordedSource, RosbagSource, TopicInfo
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.replay import Replay, ReplayGap, ReplayMode

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
    with pytest.raises(ConfigError, match="max_gap_s must be > 0"):
        Replay(SyntheticDrive(), "realtime", max_gap_s=0)


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


# -- gaps in the recording and stopping --------------------------------------------------------

HOUR_NS = 3600 * 1_000_000_000


class GappyDrive(SyntheticDrive):
    """The 1 s synthetic drive, then the same again an hour later."""

    def __init__(self) -> None:
        super().__init__()
        later = [RawRecord(r.topic, r.stamp_ns + HOUR_NS, r.data) for r in self.records_list]
        self.records_list += later


def test_realtime_sleeps_at_most_max_gap_per_gap_and_reports_it_once() -> None:
    source, clock, gaps = GappyDrive(), FakeClock(), []
    replay = Replay(
        source,
        "realtime",
        rate=2.0,
        max_gap_s=3.0,
        on_gap=gaps.append,
        clock=clock,
        sleep=clock.sleep,
        progress=False,
    )
    out = list(replay)
    assert out == source.records_list  # nothing skipped but the waiting
    (gap,) = gaps
    assert (gap.before_ns, gap.after_ns) == (START_NS + 10**9, START_NS + HOUR_NS)
    assert gap.gap_s == pytest.approx(3599.0)
    assert gap.skipped_s == pytest.approx(3599.0 / 2 - 3.0)  # at twice the speed
    assert "skipped 1796.500 s of a 3599.000 s gap" in gap.describe()
    assert max(clock.sleeps) == pytest.approx(3.0)
    # Both seconds of recording are paced as before, the gap costs 3 s.
    assert sum(clock.sleeps) == pytest.approx(0.5 + 3.0 + 0.5)
    stats = replay.stats
    assert stats.gaps == 1 and stats.skipped_s == pytest.approx(1796.5)


def test_max_gap_none_keeps_the_recording_time() -> None:
    clock = FakeClock()
    replay = Replay(
        GappyDrive(), "realtime", max_gap_s=None, clock=clock, sleep=clock.sleep, progress=False
    )
    list(replay)
    assert sum(clock.sleeps) == pytest.approx(3601.0) and replay.stats.gaps == 0


def _gappy_bag(tmp_path: Path) -> Path:
    start = 1_700_000_000_000_000_000
    return write_bag(tmp_path / "bag", drive(0.2, start) + drive(0.2, start + HOUR_NS), "mcap")


def _iterate_in_thread(replay: Replay) -> tuple[list[RawRecord], threading.Thread]:
    released: list[RawRecord] = []
    thread = threading.Thread(target=lambda: released.extend(replay), daemon=True)
    thread.start()
    return released, thread


def test_an_hour_gap_in_a_real_bag_is_skipped_promptly_and_reported(tmp_path: Path) -> None:
    gaps: list[ReplayGap] = []
    with RosbagSource(_gappy_bag(tmp_path)) as source:
        # (the helper's drive has log lines up to 0.75 s, 0.25 s apart: no gap at 0.5 s)
        replay = Replay(source, "realtime", max_gap_s=0.5, on_gap=gaps.append, progress=False)
        released, thread = _iterate_in_thread(replay)
        thread.join(timeout=60)  # generous: an unbounded sleep would take an hour
        assert not thread.is_alive()
    assert len(released) == 2 * len(drive(0.2))
    (gap,) = gaps
    start = 1_700_000_000_000_000_000
    assert (gap.before_ns, gap.after_ns) == (start + 750_000_017, start + HOUR_NS)  # last log
    assert gap.skipped_s == pytest.approx(gap.gap_s - 0.5, abs=0.05)
    assert replay.stats.gaps == 1


def test_stop_ends_a_sleep_at_once(tmp_path: Path) -> None:
    first_part = len(drive(0.2))
    with RosbagSource(_gappy_bag(tmp_path)) as source:
        replay = Replay(source, "realtime", max_gap_s=None, progress=False)
        released, thread = _iterate_in_thread(replay)
        deadline = time.monotonic() + 30
        while len(released) < first_part and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # now in the hour-long sleep
        replay.stop()
        thread.join(timeout=10)  # generous; stop() wakes the sleep at once
        assert not thread.is_alive()
    assert len(released) == first_part  # the record after the gap was not released
    assert list(replay) == []


CHILD = """
import signal, sys
from fusionrt.plugins.sources import RosbagSource
from fusionrt.runtime.replay import Replay

with RosbagSource(sys.argv[1]) as source:
    replay = Replay(source, "realtime", max_gap_s=None, progress=False)
    signal.signal(signal.SIGINT, lambda signum, frame: replay.stop())
    count = 0
    for record in replay:
        count += 1
        print(count, flush=True)
    print("stopped", count, flush=True)
"""


def test_the_first_sigint_stops_a_replay_sleeping_through_a_gap(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    first_part = len(drive(0.2))
    child = subprocess.Popen(
        [sys.executable, str(script), str(_gappy_bag(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == str(first_part):
                break
        time.sleep(0.2)  # in the hour-long sleep
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)  # one signal, generous timeout
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert out.strip().splitlines()[-1] == f"stopped {first_part}"
