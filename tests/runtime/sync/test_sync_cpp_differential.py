"""Differential test: ApproximateTimePolicy against message_filters' own C++ ApproximateTime.

Compiles ``cpp/approximate_time_driver.cpp`` against the real
``message_filters/sync_policies/approximate_time.hpp`` (from a checkout of ros2/message_filters:
set ``FUSIONRT_MESSAGE_FILTERS_INCLUDE`` to its ``include`` folder) with small stand-ins for
rclcpp's Time/Duration (as ``rclcpp/time.hpp``, ``rclcpp/duration.hpp`` and, for message_filters
6.0.6 and later, ``rclcpp/rclcpp.hpp``) and the Synchronizer (``cpp/stubs``), runs thousands of
random cases through both, and compares, push by push, the sets published and the messages
released unpublished (the C++ releases a message exactly when the Python policy reports its drop).

Skipped when the variable is unset or no C++17 compiler is found.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from fusionrt.runtime.sync import ApproximateTimePolicy

HERE = Path(__file__).parent / "cpp"
INCLUDE = os.environ.get("FUSIONRT_MESSAGE_FILTERS_INCLUDE")
CXX = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not INCLUDE
        or not (Path(INCLUDE) / "message_filters/sync_policies/approximate_time.hpp").is_file(),
        reason="set FUSIONRT_MESSAGE_FILTERS_INCLUDE to a ros2/message_filters include folder",
    ),
    pytest.mark.skipif(CXX is None, reason="no C++ compiler"),
]

Case = tuple[int, int, int | None, float, list[int], list[tuple[int, int]]]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("mf") / "approximate_time_driver"
    assert CXX is not None and INCLUDE is not None
    subprocess.run(
        [
            CXX,
            "-std=c++17",
            "-O1",
            "-I",
            str(HERE / "stubs"),
            "-I",
            INCLUDE,
            str(HERE / "approximate_time_driver.cpp"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    return exe


def random_case(rng: random.Random) -> Case:
    n = rng.randint(2, 5)
    queue = rng.choice([1, 2, 3, 4, 5, 8, 1000])
    max_interval = rng.choice([None, None, rng.randint(0, 40), rng.randint(0, 4000)])
    age = rng.choice([0.0, 0.1, 0.1, 0.5, 1 / 3, rng.random(), rng.random() * 3])
    scale = rng.choice([1, 1, 10, 1_000_003, 33_333_333])
    base = rng.choice([0, 0, 1_700_000_000_000_000_000])
    bounds = [0] * n
    if rng.random() < 0.5:
        bounds = [rng.randint(0, 8) * scale for _ in range(n)]
    streams: list[list[int]] = []
    count = rng.randint(0, 40)
    for _ in range(n):
        t = base + rng.randint(0, 10) * scale
        stamps = []
        for _ in range(rng.randint(0, count)):
            t += rng.choice([0, 1, 1, 2, 3, 5, 8]) * scale + rng.randint(0, 2) * (scale // 3)
            stamps.append(t)
        streams.append(stamps)
    # Interleave the streams in a random arrival order (per-stream order kept).
    cursors = [0] * n
    order: list[tuple[int, int]] = []
    while True:
        live = [i for i in range(n) if cursors[i] < len(streams[i])]
        if not live:
            break
        i = rng.choice(live)
        order.append((i, streams[i][cursors[i]]))
        cursors[i] += 1
    max_ns = None if max_interval is None else max_interval * scale
    return n, queue, max_ns, age, bounds, order


def python_trace(case: Case) -> list[tuple[list[tuple[int, ...]], set[int]]]:
    n, queue, max_ns, age, bounds, order = case
    dropped: set[int] = set()
    policy = ApproximateTimePolicy(
        n,
        queue,
        max_interval_ns=max_ns,
        age_penalty=age,
        inter_message_lower_bounds_ns=bounds,
        on_drop=lambda _s, _t, item, _r, _d: dropped.add(item),
    )
    trace = []
    for k, (stream, stamp) in enumerate(order):
        dropped = set()
        sets = policy.push(stream, stamp, k)
        trace.append((sets, dropped))
    return trace


def cpp_traces(
    driver: Path, cases: list[Case]
) -> list[list[tuple[list[tuple[int, ...]], set[int]]]]:
    lines = [str(len(cases))]
    for n, queue, max_ns, age, bounds, order in cases:
        lines.append(
            f"{n} {queue} {-1 if max_ns is None else max_ns} {age!r} "
            f"{' '.join(map(str, bounds))} {len(order)}"
        )
        lines.extend(f"{s} {t}" for s, t in order)
    result = subprocess.run(
        [str(driver)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    traces: list[list[tuple[list[tuple[int, ...]], set[int]]]] = []
    current: list[tuple[list[tuple[int, ...]], set[int]]] = []
    for line in result.stdout.splitlines():
        kind, *rest = line.split()
        if kind == "A":
            current.append(([], set()))
        elif kind == "S":
            current[-1][0].append(tuple(int(x) for x in rest))
        elif kind == "D":
            current[-1][1].add(int(rest[0]))
        elif kind == "E":
            traces.append(current)
            current = []
    return traces


@pytest.mark.parametrize("seed", range(8))
def test_identical_to_message_filters(driver: Path, seed: int) -> None:
    rng = random.Random(seed)
    cases = [random_case(rng) for _ in range(500)]
    expected = cpp_traces(driver, cases)
    assert len(expected) == len(cases)
    for case, want in zip(cases, expected, strict=True):
        got = python_trace(case)
        assert got == want, case


def realistic_case(rng: random.Random) -> Case:
    """Sensor-like streams (10-100 Hz, jitter, per-stream latency, epoch stamps), long runs."""
    n = rng.randint(2, 5)
    rates = [rng.choice([10, 20, 30, 100]) for _ in range(n)]
    latency = [rng.randint(0, 80) * 1_000_000 for _ in range(n)]
    events = []
    for i, hz in enumerate(rates):
        period = 1_000_000_000 // hz
        last = -1
        for k in range(int(rng.uniform(2, 8) * hz)):
            stamp = max(last + 1, 10**18 + k * period + int(rng.gauss(0, period * 0.05)))
            last = stamp
            events.append((stamp + latency[i], i, stamp))
    events.sort()
    queue = rng.choice([2, 5, 10, 20, 50])
    max_ns = rng.choice([None, 20_000_000, 50_000_000])
    age = rng.choice([0.0, 0.1, 0.3])
    bounds = [rng.choice([0, 1_000_000_000 // rates[i] // 2]) for i in range(n)]
    return n, queue, max_ns, age, bounds, [(i, t) for _, i, t in events]


@pytest.mark.parametrize("seed", range(4))
def test_identical_to_message_filters_on_sensor_like_streams(driver: Path, seed: int) -> None:
    rng = random.Random(1000 + seed)
    cases = [realistic_case(rng) for _ in range(25)]
    expected = cpp_traces(driver, cases)
    for case, want in zip(cases, expected, strict=True):
        assert python_trace(case) == want, case[:5]
