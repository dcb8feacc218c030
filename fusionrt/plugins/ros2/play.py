"""``fusionrt play DRIVE``: a recorded drive's topics onto Zenoh, as a ROS 2 node would send them.

``fusionrt play DRIVE [--rate R] [--loop] [--topics T ...] [--connect E]... [--listen E]...
[--domain-id N] [--mode peer|client] [--wait-subscribers S]`` publishes the drive's topics
(a drive folder holding ``bag/``, a bag folder, or an ``.mcap`` / ``.db3`` file) with
rmw_zenoh's conventions, paced by the recorded log times like ``ros2 bag play`` (header stamps
and message bytes unchanged), as the node ``/fusionrt_play`` with a publisher token per topic.
It is how ``fusionrt serve`` (and any rmw_zenoh subscriber) is driven without a car.
``--wait-subscribers S`` holds the first message until every topic has a subscriber, or for S
seconds at most. SIGINT (Ctrl-C) or SIGTERM stops it between two messages, undeclares its
tokens and exits 0 (stopping is how a ``--loop`` play ends); it prints what it published per
topic. A damaged recording (messages the rosbag source could not read) plays the rest and exits
3, as ``fusionrt run`` does, naming what was lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt play``."""
    play = subparsers.add_parser(
        "play",
        help="publish a recorded drive onto ROS 2 over Zenoh (like ros2 bag play)",
        description=(
            "Publish a recorded drive's topics onto ROS 2 over Zenoh with rmw_zenoh's "
            "conventions, paced by the recorded log times like ros2 bag play (message bytes "
            "and header stamps unchanged), as a node with liveliness tokens. SIGINT / SIGTERM "
            "stop it cleanly (exit 0)."
        ),
    )
    play.add_argument("drive", type=Path, help="drive folder, bag folder, or .mcap / .db3 file")
    play.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    play.add_argument("--loop", action="store_true", help="start over at the end, until stopped")
    play.add_argument("--topics", nargs="+", metavar="T", help="play only these topics")
    play.add_argument(
        "--connect", action="append", default=[], metavar="E", help="endpoint to connect to"
    )
    play.add_argument(
        "--listen", action="append", default=[], metavar="E", help="endpoint to listen on"
    )
    play.add_argument("--domain-id", type=int, default=0, help="ROS domain id (default 0)")
    play.add_argument("--mode", choices=("peer", "client"), default="peer", help="Zenoh mode")
    play.add_argument(
        "--multicast-scouting", action="store_true", help="find peers by UDP multicast too"
    )
    play.add_argument("--node-name", default="fusionrt_play", help="ROS node name")
    play.add_argument(
        "--wait-subscribers",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for a subscriber of every topic before playing",
    )
    play.set_defaults(func=_play)


def _play(args: argparse.Namespace) -> int:
    # Imported here: building the CLI parser must not pay for Zenoh and the typestore.
    from fusionrt.plugins.ros2.node import Node  # noqa: PLC0415
    from fusionrt.plugins.ros2.player import Player  # noqa: PLC0415
    from fusionrt.plugins.ros2.session import SessionOptions  # noqa: PLC0415
    from fusionrt.plugins.sources import NOT_LOST  # noqa: PLC0415
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415
    from fusionrt.runtime.front_end import open_source  # noqa: PLC0415
    from fusionrt.runtime.run_cli import EXIT_DAMAGED  # noqa: PLC0415
    from fusionrt.runtime.signals import StopSignals  # noqa: PLC0415

    options = SessionOptions(
        domain_id=args.domain_id,
        mode=args.mode,
        connect=tuple(args.connect),
        listen=tuple(args.listen),
        multicast_scouting=args.multicast_scouting,
        node_name=args.node_name,
    )
    source: Any = open_source(args.drive, registry_from_args(args), args.topics)
    with source, StopSignals() as signals:
        node = Node(options)
        try:
            player = Player(source, node, rate=args.rate, loop=args.loop, stop=signals.event)
            _print_start(args, node, player)
            if args.wait_subscribers > 0:
                missing = player.wait_for_subscribers(args.wait_subscribers)
                if missing:
                    print(f"no subscriber after {args.wait_subscribers:g} s: {', '.join(missing)}")
            stats = player.run()
        finally:
            node.close()
        _print_summary(player, stats, signals.received)
    lost = sum(n for reason, n in source.bad_counts.items() if reason not in NOT_LOST)
    if lost and signals.received is None:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(source.bad_counts.items()))
        print(
            f"fusionrt: the recording is damaged ({counts}); the rest was played",
            file=sys.stderr,
        )
        return EXIT_DAMAGED
    return 0


def _print_start(args: argparse.Namespace, node: Any, player: Any) -> None:
    endpoints = ", ".join(
        [f"connect {e}" for e in node.options.connect]
        + [f"listen {e}" for e in node.options.listen]
    )
    print(
        f"playing {args.drive} at {args.rate:g}x{' (loop)' if args.loop else ''}: "
        f"{len(player.publishers)} topics, node {node.options.namespace.rstrip('/')}/"
        f"{node.options.node_name}, domain {node.options.domain_id}, {node.options.mode} "
        f"{node.zid}{' (' + endpoints + ')' if endpoints else ''}",
        flush=True,
    )


def _print_summary(player: Any, stats: Any, received: int | None) -> None:
    import signal  # noqa: PLC0415

    from fusionrt.runtime.text_table import format_table  # noqa: PLC0415

    rows = [
        [topic, publisher.msgtype, str(stats.published[topic])]
        for topic, publisher in player.publishers.items()
    ]
    print(format_table(["topic", "type", "published"], rows))
    end = f"stopped by {signal.Signals(received).name}" if received else "end of the drive"
    passes = f", {stats.passes} passes" if stats.passes > 1 else ""
    print(f"published {stats.total} messages in {stats.wall_s:.1f} s{passes} ({end})")
