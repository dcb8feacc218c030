"""fusionrt.runtime.sync exports its names lazily: each resolves to its module's object, and a
sensor plugin importing the ego-motion functions does not import the synchroniser."""

from __future__ import annotations

import importlib
import subprocess
import sys

from fusionrt.runtime import sync


def test_every_exported_name_is_its_modules_object() -> None:
    assert set(sync.__all__) == set(sync._MODULES)
    for name in sync.__all__:
        home = importlib.import_module(sync._MODULES[name])
        assert getattr(sync, name) is getattr(home, name), name
    assert set(sync.__all__) <= set(dir(sync))


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
