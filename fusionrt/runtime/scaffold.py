"""``fusionrt plugins new``: write a ready-to-install sensor plugin package.

The generated package has a ``pyproject.toml`` with the ``fusionrt`` entry point, a sensor whose
decode reads a small documented binary format and whose preprocess is generic over the model's
geometry, deterministic sample data, and a test file that runs the conformance kit. It passes
the kit as written, so an author starts from green and changes one piece at a time.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from fusionrt.runtime.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "fusionrt-$dashed"
version = "0.1.0"
description = "A fusionrt sensor plugin: $name."
requires-python = ">=3.10"
dependencies = ["fusionrt", "numpy>=1.26"]

[project.entry-points.fusionrt]
$name = "$package.plugin"

[tool.setuptools.packages.find]
where = ["src"]
""")

_INIT = Template('''\
"""fusionrt-$dashed: the `$name` sensor plugin for fusionrt."""

from $package.sensor import $cls

__all__ = ["$cls"]
''')

_PLUGIN = Template('''\
"""Entry-point module: registers the `$name` sensor with fusionrt."""

from __future__ import annotations

from fusionrt import hookimpl
from $package.sensor import $cls


@hookimpl
def fusionrt_sensors() -> list[type]:
    """Contribute the `$name` sensor."""
    return [$cls]
''')

_SENSOR = Template('''\
"""The `$name` sensor.

Wire format (little-endian): ``stamp_ns`` uint64, ``count`` uint32, then ``count`` float32
readings. Replace it with your device's format; keep decode cheap (a numpy view of the bytes)
and raise ``DecodeError`` naming sensor, topic and offset for anything malformed.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrt import DecodeError, RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor

HEADER = struct.Struct("<QI")


def encode(stamp_ns: int, readings: np.ndarray) -> bytes:
    """Serialise one message of the wire format."""
    values = np.asarray(readings, dtype="<f4")
    return HEADER.pack(stamp_ns, len(values)) + values.tobytes()


class $cls(Sensor):
    """Decodes float32 readings; preprocesses them into a fixed-length vector.

    Options: ``length`` (8): readings per vector. Declare each option in ``option_specs``; the
    base class refuses unknown names and values that do not fit (``ConfigError`` at the key).
    """

    name: ClassVar[str] = "$name"
    modality: ClassVar[Modality] = Modality.OTHER
    nonfinite: ClassVar[NonFinitePolicy] = NonFinitePolicy.DROP
    option_specs: ClassVar[Mapping[str, Option]] = {"length": Option(8, int, minimum=1)}

    def __init__(self, instance: str | None = None, topic: str = "/$name", **options: Any) -> None:
        super().__init__(instance, topic, **options)
        self.length: int = self.options["length"]

    def decode(self, raw: RawRecord) -> SensorMessage:
        """Read the header and view the readings without copying."""
        data = raw.data
        where = {"sensor": self.instance, "topic": raw.topic, "path": raw.path}
        if len(data) < HEADER.size:
            raise DecodeError("message shorter than its header", offset=len(data), **where)
        stamp_ns, count = HEADER.unpack_from(data)
        if len(data) != HEADER.size + 4 * count:
            raise DecodeError(
                f"header declares {count} readings but {len(data) - HEADER.size} bytes follow",
                offset=HEADER.size,
                **where,
            )
        readings = np.frombuffer(data, dtype="<f4", count=count, offset=HEADER.size)
        return SensorMessage(self.instance, int(stamp_ns), readings, self.instance, 0, raw.topic)

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """One vector of ``length`` readings."""
        return [TensorSpec("${name}_readings", (self.length,), "float32", self.instance)]

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """The first ``length`` readings, zero-padded; NaN/inf become 0."""
        (spec,) = self.tensor_specs(context)
        out = spec.zeros()
        if message is not None:
            readings = np.asarray(message.payload, dtype=np.float32)[: self.length]
            out[: len(readings)] = np.where(np.isfinite(readings), readings, 0.0)
        return {spec.name: out}

    def sample_records(self) -> list[RawRecord]:
        """Two deterministic messages for the conformance kit."""
        stamps = (1_000_000_000, 1_100_000_000)
        return [
            RawRecord(self.topic, t, encode(t, np.linspace(0.0, 1.0, 6) + i), "$name/raw")
            for i, t in enumerate(stamps)
        ]
''')

_TEST = Template('''\
"""The `$name` plugin passes the fusionrt conformance kit."""

import numpy as np
import pytest

from fusionrt import ConfigError
from fusionrt.runtime.testing import parametrize_sensor_checks
from $package.sensor import $cls


@parametrize_sensor_checks($cls)
def test_conformance(check):
    check()


def test_decode_reads_the_samples():
    sensor = $cls()
    message = sensor.decode(sensor.sample_records()[0])
    assert message.stamp_ns == 1_000_000_000
    np.testing.assert_allclose(message.payload, np.linspace(0.0, 1.0, 6))


def test_options_follow_their_declaration():
    assert $cls(length=4).length == 4
    with pytest.raises(ConfigError, match="did you mean 'length'"):
        $cls(lenght=4)
    with pytest.raises(ConfigError, match="length"):
        $cls(length=0)
''')

_README = Template("""\
# fusionrt-$dashed

A fusionrt sensor plugin. Install it next to fusionrt and it is found through its entry point:

```bash
pip install -e .
fusionrt plugins check $name
pytest tests
```
""")


def write_sensor_plugin(name: str, parent: Path) -> Path:
    """Write the package ``fusionrt-<name>`` under ``parent`` and return its directory."""
    if not _NAME.match(name):
        raise ConfigError(
            "plugin name must be lower-case letters, digits and underscores, starting with a "
            "letter",
            name=name,
        )
    dashed = name.replace("_", "-")
    package = f"fusionrt_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) + "Sensor"
    root = Path(parent) / f"fusionrt-{dashed}"
    if root.exists():
        raise ConfigError("refusing to overwrite an existing directory", path=str(root))
    values = {"name": name, "dashed": dashed, "package": package, "cls": cls}
    files = {
        root / "pyproject.toml": _PYPROJECT,
        root / "README.md": _README,
        root / "src" / package / "__init__.py": _INIT,
        root / "src" / package / "plugin.py": _PLUGIN,
        root / "src" / package / "sensor.py": _SENSOR,
        root / "tests" / f"test_{name}.py": _TEST,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
    return root
