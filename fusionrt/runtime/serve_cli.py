"""``fusionrt serve``: the embedded main loop — live sensor streams in, detections out.

``fusionrt serve PIPELINE.yaml`` builds the pipeline of the file in live mode: the sensors read
the pipeline's ``live:`` transport (ROS 2 topics over Zenoh) or their own live ``source``, the
rig comes from the file's ``rig:`` key (there is no drive folder), deadlines and staleness run
on the wall clock. It runs until SIGINT or SIGTERM (or ``--duration`` / ``--max-frames``),
then finishes the frames in flight, closes the sinks and the sources (liveliness tokens
undeclared), writes the report (the same as ``fusionrt run``'s, with the start-up time to the
first frame) and exits 0; a failure exits 1 with a one-line error.

``--connect`` / ``--listen`` / ``--domain-id`` override the ``live:`` section's values (each
repeatable option replaces the file's list).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fusionrt.runtime.arguments import positive_int, positive_number
from fusionrt.runtime.config import PipelineConfig, load_pipeline, zenoh_options
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.front_end import LiveSources
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.report import format_report, summarise_detections
from fusionrt.runtime.run_cli import check_output_paths, report_of, write_report_or_fail


def with_overrides(
    config: PipelineConfig,
    *,
    connect: list[str] | None = None,
    listen: list[str] | None = None,
    domain_id: int | None = None,
) -> PipelineConfig:
    """``config`` with the command line's transport settings in its ``live:`` section."""
    overrides: dict[str, Any] = {}
    if connect is not None:
        overrides["connect"] = connect
    if listen is not None:
        overrides["listen"] = listen
    if domain_id is not None:
        overrides["domain_id"] = domain_id
    if not overrides:
        return config
    if config.live is None or config.live.source != "ros2":
        raise ConfigError(
            "--connect, --listen and --domain-id need a live: section with transport: zenoh",
            file=str(config.path),
            key="live",
        )
    options = zenoh_options({**config.live.options, **overrides}, file=config.path, key="live")
    return replace(config, live=replace(config.live, options=MappingProxyType(options)))


def _serve(args: argparse.Namespace) -> int:
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415

    check_output_paths(args.out, args.report)
    config = with_overrides(
        load_pipeline(args.pipeline),
        connect=args.connect,
        listen=args.listen,
        domain_id=args.domain_id,
    )
    options = RunOptions(
        backend=args.backend,
        max_frames=args.max_frames,
        out_dir=args.out,
        duration_s=args.duration,
        explain=args.explain,
    )
    pipeline = Pipeline(config, None, registry_from_args(args), options)
    print(_serving_line(pipeline), file=sys.stderr, flush=True)
    try:
        result = pipeline.run()
    except BaseException:
        if pipeline.result is not None:  # it ran, then failed: its report still says how far
            write_report_or_fail(report_of(pipeline.result), args.report)
        raise
    report = report_of(result)
    print(format_report(report, summarise_detections(result)))
    write_report_or_fail(report, args.report)
    if result.records == 0:
        topics = ", ".join(t for sc in config.sensors for t in sc.topics)
        print(f"fusionrt serve: no message was received on {topics}", file=sys.stderr)
    return 0


def _serving_line(pipeline: Pipeline) -> str:
    """What serve is about to do, in one line: its inputs, transport settings and outputs."""
    config = pipeline.config
    sources = pipeline.source.sources if isinstance(pipeline.source, LiveSources) else ()
    inputs = [f"{len(source.topics)} topic(s) over {source.name}" for source in sources]
    live = config.live
    settings = ""
    if live is not None and live.source == "ros2":
        options = live.options
        settings = (
            f" (domain {options['domain_id']}, {options['mode']}, "
            f"listen {', '.join(options['listen']) or 'none'}, "
            f"connect {', '.join(options['connect']) or 'none'})"
        )
    sinks = ", ".join(getattr(s, "name", type(s).__name__) for s in pipeline.sinks) or "none"
    return (
        f"fusionrt serve: receiving {'; '.join(inputs)}{settings}; detections to {sinks}; "
        "SIGINT or SIGTERM stops"
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt serve``."""
    serve = subparsers.add_parser(
        "serve",
        help="run a pipeline live: sensor streams in, detections out, until stopped",
        description="The embedded main loop: run the pipeline of a YAML file on live inputs.",
    )
    serve.add_argument("pipeline", type=Path, help="pipeline YAML with a live: section and a rig")
    serve.add_argument(
        "--connect",
        action="append",
        default=None,
        metavar="ENDPOINT",
        help="Zenoh endpoint to connect to, e.g. tcp/127.0.0.1:7447 (repeatable)",
    )
    serve.add_argument(
        "--listen",
        action="append",
        default=None,
        metavar="ENDPOINT",
        help="Zenoh endpoint to listen on (repeatable; replaces live.listen)",
    )
    serve.add_argument("--domain-id", type=int, default=None, help="ROS domain id (live.domain_id)")
    serve.add_argument(
        "--duration", type=positive_number, default=None, help="stop after this many seconds"
    )
    serve.add_argument("--max-frames", type=positive_int, default=None, help="stop after N frames")
    serve.add_argument(
        "--explain",
        action="store_true",
        help="per frame, how much each modality contributed: the model runs again with each "
        "present modality masked (one extra inference each); written to the JSONL, the MCAP "
        "(/fusionrt/explanations) and the report",
    )
    serve.add_argument("--backend", default=None, help="auto|onnxruntime|torch|tensorrt")
    serve.add_argument("--report", type=Path, default=None, help="write the report JSON here")
    serve.add_argument(
        "--out", type=Path, default=Path("out"), help="folder of the sinks' files (out)"
    )
    serve.set_defaults(func=_serve)
