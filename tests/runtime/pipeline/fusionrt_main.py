"""``fusionrt`` for subprocess tests: with ``FUSIONRT_ASSERT_NO_TORCH=1`` it exits 3 if the
command imported torch (the run path must not)."""

from __future__ import annotations

import os
import sys

from fusionrt.runtime import cli

code = cli.main(sys.argv[1:])
if os.environ.get("FUSIONRT_ASSERT_NO_TORCH") == "1" and "torch" in sys.modules:
    print("torch was imported", file=sys.stderr)
    sys.exit(3)
sys.exit(code)
