"""Two CAN nodes on python-can's ``udp_multicast`` interface, for test_socketcan.py.

Run inside a private network namespace whose ``lo`` is up with a multicast route (the test
does this with ``unshare -n``)::

    python can_multicast_peer.py receive LOG TOPIC

starts the ``socketcan`` source on the multicast bus, then a second process
(``... send LOG``) that sends one datagram python-can cannot unpack, then the log's frames in
batches; after each batch the sender waits until the receiver has all of it, so a socket
buffer never overflows. The receiver prints a JSON report: the records (stamp, candump line),
the drops by reason, and the wall-clock window the source was open in.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import can

from fusionrt.plugins.sensors.can import read_candump
from fusionrt.plugins.sources.socketcan import SocketCanSource
from fusionrt.runtime.live import RecordInbox

GROUP = "239.74.163.2"
PORT = 43113
BATCH = 200
TIMEOUT_S = 20.0


def receive(log: str, topic: str) -> None:
    frames = sum(1 for _ in read_candump(log))
    source = SocketCanSource(
        [topic], interface="udp_multicast", channel=GROUP, bus_options={"port": PORT}
    )
    inbox = RecordInbox(frames)
    opened_ns = time.time_ns()
    source.start(inbox)
    _until(lambda: source.bus is not None)
    sender = subprocess.Popen(
        [sys.executable, __file__, "send", log],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sender.stdin is not None and sender.stdout is not None
    try:
        for line in sender.stdout:
            word, count = line.split()
            if word == "done":
                break
            sent = int(count)
            _until(lambda sent=sent: inbox.received[topic] >= sent)
            sender.stdin.write("go\n")
            sender.stdin.flush()
    finally:
        sender.stdin.close()
        sender.wait(timeout=TIMEOUT_S)
        closed_ns = time.time_ns()
        source.close()
    records = []
    while (arrival := inbox.get(timeout_s=0)) is not None:
        records.append([arrival[0].stamp_ns, bytes(arrival[0].data).decode()])
    dropped = {reason: n for (_, reason), n in inbox.dropped.items()}
    report = {"records": records, "dropped": dropped, "opened_ns": opened_ns}
    print(json.dumps({**report, "closed_ns": closed_ns}))


def send(log: str) -> None:
    garbage = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    garbage.sendto(b"\xc1 not msgpack", (GROUP, PORT))  # 0xC1 is never used by msgpack
    garbage.close()
    bus = can.Bus(interface="udp_multicast", channel=GROUP, port=PORT, ignore_config=True)
    sent = 0
    try:
        for frame in read_candump(log):
            message = can.Message(
                arbitration_id=frame.arbitration_id,
                is_extended_id=frame.is_extended,
                data=frame.data,
            )
            bus.send(message)
            sent += 1
            if sent % BATCH == 0:
                _ask(f"sent {sent}")
        _ask(f"sent {sent}")
        print("done 0", flush=True)
    finally:
        bus.shutdown()


def _ask(line: str) -> None:
    """Tell the receiver what was sent and wait for its go."""
    print(line, flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the receiver went away")


def _until(condition, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the multicast peer waited too long")
        time.sleep(0.002)


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        receive(sys.argv[2], sys.argv[3])
    else:
        send(sys.argv[2])
