"""``fusionrt`` for subprocess tests, with ``fleet`` wired in (until the lead adds
``fusionrt.fleet.cli`` to ``COMMAND_MODULES``; after, this changes nothing)."""

from __future__ import annotations

import sys

from fusionrt.runtime import cli

if "fusionrt.fleet.cli" not in cli.COMMAND_MODULES:
    cli.COMMAND_MODULES = (*cli.COMMAND_MODULES, "fusionrt.fleet.cli")
sys.exit(cli.main(sys.argv[1:]))
