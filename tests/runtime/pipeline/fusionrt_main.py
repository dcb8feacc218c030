"""``fusionrt`` for subprocess tests: the main command with ``run`` and ``bench`` wired in.

(Until the lead adds ``fusionrt.runtime.run_cli`` to ``COMMAND_MODULES`` this adds it; after,
it changes nothing.) With ``FUSIONRT_ASSERT_NO_TORCH=1`` it exits 3 if torch was imported.
"""

from __future__ import annotations

import os
import sys

from fusionrt.runtime import cli

if "fusionrt.runtime.run_cli" not in cli.COMMAND_MODULES:
    cli.COMMAND_MODULES = (*cli.COMMAND_MODULES, "fusionrt.runtime.run_cli")
code = cli.main(sys.argv[1:])
if os.environ.get("FUSIONRT_ASSERT_NO_TORCH") == "1" and "torch" in sys.modules:
    print("torch was imported", file=sys.stderr)
    sys.exit(3)
sys.exit(code)
