"""Counts and rates on the command line: 0, negative and non-finite values are refused while
parsing, by every command that takes them, before anything runs."""

from __future__ import annotations

import pytest

from fusionrt.runtime.cli import build_parser, main

RUN = ["run", "p.yaml", "--source", "drive"]
BENCH = ["bench", "p.yaml", "--source", "drive"]
FLEET = ["fleet", "run", "p.yaml", "--drives", "d/*", "--out", "out"]
QUANTIZE = ["quantize", "m.onnx", "-o", "q.onnx", "--drive", "drive", "--pipeline", "p.yaml"]


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (RUN, "--workers", "0"),
        (RUN, "--infer-workers", "0"),
        (RUN, "--max-frames", "0"),
        (RUN, "--max-frames", "-1"),
        (RUN, "--rate", "0"),
        (RUN, "--rate", "-1"),
        (RUN, "--rate", "nan"),
        (RUN, "--rate", "inf"),
        (RUN, "--workers", "two"),
        (BENCH, "--workers", "0"),
        (BENCH, "--max-frames", "0"),
        (BENCH, "--rate", "nan"),
        (FLEET, "--workers", "0"),
        (QUANTIZE, "--frames", "0"),
        (QUANTIZE, "--stride", "-3"),
    ],
)
def test_bad_counts_and_rates_are_refused_while_parsing(capsys, argv, option, value):
    with pytest.raises(SystemExit) as info:
        main([*argv, option, value])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}: must be " in last and repr(value) in last


def test_good_values_parse():
    argv = [*RUN, "--workers", "3", "--max-frames", "1", "--rate", "0.5", "--infer-workers", "2"]
    args = build_parser(argv).parse_args(argv)
    assert (args.workers, args.max_frames, args.rate, args.infer_workers) == (3, 1, 0.5, 2)
