"""fusionrt.runtime.sync exports its names lazily: each resolves to its module's object, and a
sensor plugin importing the ego-motion functions does not import the synchroniser."""

from __future__ import annotations

import subprocess
import sys

from fusionrt.runtime import sync

PREFIX = "fusionrt.runtime.sync."


def test_every_exported_name_is_its_modules_object() -> None:
    assert set(sync.__all__) == set(dir(sync))
    values = {name: getattr(sync, name) for name in sync.__all__}
    homes = [module for name, module in sys.modules.items() if name.startswith(PREFIX)]
    for name, value in values.items():
        assert [h for h in homes if getattr(h, name, None) is value], name


def test_importing_compensate_points_leaves_the_synchroniser_unimported() -> None:
    code = (
        "import sys\n"
        "from fusionrt.runtime.sync import compensate_points\n"
        "print(sorted(m for m in sys.modules if m.startswith('fusionrt.runtime.sync.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['fusionrt.runtime.sync.ego_motion']"
