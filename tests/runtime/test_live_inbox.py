"""The live inbox: bounded per topic, drops the oldest, oldest arrival first, never blocks."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.live import RecordInbox
from fusionrt.runtime.messages import RawRecord


def _record(topic: str, stamp: int) -> RawRecord:
    return RawRecord(topic, stamp, b"", "std_msgs/msg/String")


def test_a_full_topic_drops_its_oldest_and_counts_it():
    drops = []
    inbox = RecordInbox(2, on_drop=lambda topic, reason, record: drops.append((topic, reason)))
    for stamp in range(5):
        inbox.put(_record("/lidar", stamp))
    inbox.put(_record("/camera", 9))
    taken = [inbox.get(0.0) for _ in range(4)]
    assert [a[0].stamp_ns for a in taken if a] == [3, 4, 9]
    assert taken[-1] is None  # empty: returns after the timeout
    assert inbox.dropped == {("/lidar", "queue_full"): 3}
    assert drops == [("/lidar", "queue_full")] * 3
    assert inbox.received == {"/lidar": 5, "/camera": 1}


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 10**6)), max_size=60))
@settings(max_examples=200, deadline=None)
def test_every_record_is_taken_once_in_arrival_order_or_counted_dropped(puts):
    inbox = RecordInbox(3)
    for index, (topic, _) in enumerate(puts):
        inbox.put(_record(topic, index), arrival_ns=index)
    taken = []
    while (arrival := inbox.get(0.0)) is not None:
        taken.append(arrival)
    order = [record.stamp_ns for record, _ in taken]
    assert order == sorted(order)  # oldest arrival first, across topics
    assert all(record.stamp_ns == arrival for record, arrival in taken)
    assert len(taken) + sum(inbox.dropped.values()) == len(puts)
    for topic in "abc":  # what is kept of each topic is its newest
        mine = [i for i, (t, _) in enumerate(puts) if t == topic]
        assert [r.stamp_ns for r, _ in taken if r.topic == topic] == mine[-3:]


def test_get_wakes_on_put_from_another_thread_and_on_close():
    inbox = RecordInbox()
    threading.Timer(0.05, inbox.put, args=(_record("/x", 1),)).start()
    arrival = inbox.get(timeout_s=10.0)
    assert arrival is not None and arrival[0].stamp_ns == 1
    threading.Timer(0.05, inbox.close).start()
    started = time.monotonic()
    assert inbox.get(timeout_s=10.0) is None
    assert time.monotonic() - started < 5.0  # woken by close, not the timeout
    inbox.put(_record("/x", 2))  # after close: refused quietly
    assert len(inbox) == 0
