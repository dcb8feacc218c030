"""What processes a test's subprocess started, and what is left of them: read from ``/proc``.

:class:`TreeWatch` samples the descendants of one process while it runs (their pids, names,
sessions and the TCP ports they listen on); :meth:`TreeWatch.survivors` later lists the live
processes of those sessions, or those very processes (pid and start time), so a test can check
that nothing outlived the run, and kill only what its own subprocess started.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP state in /proc/net/tcp
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    state: str
    start_ticks: int
    name: str

    @property
    def key(self) -> tuple[int, int]:
        """Identity that survives pid reuse."""
        return self.pid, self.start_ticks


def snapshot() -> dict[int, Proc]:
    """Every process of the machine now."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
            cmdline = Path("/proc", entry, "cmdline").read_bytes()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        name = cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip() or comm
        procs[int(entry)] = Proc(
            int(entry), int(fields[1]), int(fields[3]), fields[0], int(fields[19]), name
        )
    return procs


def descendants(root: int, procs: dict[int, Proc]) -> list[Proc]:
    """The processes below ``root`` by parent links (``root`` itself included when alive)."""
    children: dict[int, list[Proc]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc)
    found = [procs[root]] if root in procs else []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.pid)
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_ip: str) -> Address:
    """An address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) byte order."""
    words = [bytes.fromhex(hex_ip[i : i + 8])[::-1] for i in range(0, len(hex_ip), 8)]
    return ipaddress.ip_address(b"".join(words))


def tcp_listeners() -> list[tuple[Address, int, int]]:
    """(address, port, socket inode) of every listening TCP socket of this network namespace."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] != _LISTEN:
                    continue
                hex_ip, hex_port = fields[1].split(":")
                rows.append((_address(hex_ip), int(hex_port, 16), int(fields[9])))
    return rows


def is_loopback(address: Address) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address (``::ffff:127.0.0.1``)."""
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


class TreeWatch:
    """Samples the descendants of ``root`` every ``period_s`` while the ``with`` block runs."""

    def __init__(self, root: int, period_s: float = 0.1) -> None:
        self.root = root
        self.period_s = period_s
        self.seen: dict[tuple[int, int], Proc] = {}
        self.names: set[str] = set()  # every title seen (Ray renames its processes as they work)
        self.listeners: set[tuple[Address, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.period_s):
                return

    def sample(self) -> None:
        tree = [p for p in descendants(self.root, snapshot()) if p.state != "Z"]
        inodes: set[int] = set()
        for proc in tree:
            self.seen[proc.key] = proc
            self.names.add(proc.name)
            inodes |= _socket_inodes(proc.pid)
        for address, port, inode in tcp_listeners():
            if inode in inodes:
                self.listeners.add((address, port))

    @property
    def sessions(self) -> set[int]:
        """Sessions of the watched processes (never the test's own)."""
        return {p.sid for p in self.seen.values()} - {os.getsid(0)}

    def survivors(self) -> list[Proc]:
        """Live processes of the watched sessions, or watched processes still alive."""
        return [
            p
            for p in snapshot().values()
            if p.state != "Z" and (p.sid in self.sessions or p.key in self.seen)
        ]

    def wait_until_gone(self, timeout_s: float) -> list[Proc]:
        """The survivors once none is left, or those left after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left := self.survivors()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def kill_survivors(self) -> None:
        """SIGKILL what is left (only processes this watch saw or their sessions)."""
        for proc in self.survivors():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def listening_now(ports: Iterable[int]) -> set[int]:
    """Which of ``ports`` some process of this namespace listens on now."""
    wanted = set(ports)
    return {port for _, port, _ in tcp_listeners() if port in wanted}
