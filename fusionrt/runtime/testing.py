"""The sensor-plugin conformance kit, in the spirit of scikit-learn's ``check_estimator``.

Each check is a small named function that enforces one part of the sensor contract
(``fusionrt.runtime.sensor.Sensor``) and raises :class:`CheckFailure` with a precise reason when
the plugin breaks it. :func:`check_sensor_plugin` runs them all and returns a report;
:func:`parametrize_sensor_checks` turns them into one pytest case each, for a plugin's own tests.

The checks use only the plugin's public methods and its shipped sample data
(``sample_records`` / ``default_context``), so they run on any machine.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fusionrt.runtime.errors import DecodeError, FusionError
from fusionrt.runtime.messages import RawRecord, SensorMessage
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor

Status = Literal["passed", "failed", "xfailed", "xpassed", "not_applicable"]


class CheckFailure(AssertionError):
    """A sensor plugin broke the contract enforced by one check."""


class NotApplicable(Exception):
    """The check does not apply to this plugin (the reason says why)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check on one plugin."""

    name: str
    status: Status
    detail: str = ""
    contract: str = ""


@dataclass(slots=True)
class CheckReport:
    """Outcome of all checks on one plugin."""

    sensor: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check failed (xfailed and not-applicable checks do not count)."""
        return all(r.status not in ("failed", "xpassed") for r in self.results)

    def failures(self) -> list[CheckResult]:
        """The checks that failed, or passed although declared as expected failures."""
        return [r for r in self.results if r.status in ("failed", "xpassed")]

    def raise_if_failed(self) -> None:
        """Raise :class:`CheckFailure` listing every failed check."""
        failed = self.failures()
        if failed:
            lines = "\n".join(f"  {r.name}: {r.detail}" for r in failed)
            count = len(failed)
            raise CheckFailure(f"sensor plugin {self.sensor!r} failed {count} check(s):\n{lines}")

    def table(self) -> str:
        """A plain-text table: check, status, detail."""
        width = max((len(r.name) for r in self.results), default=5)
        rows = [f"{'check':<{width}}  {'status':<14}  detail"]
        rows += [f"{r.name:<{width}}  {r.status:<14}  {r.detail}" for r in self.results]
        return "\n".join(rows)


SensorCheck = Callable[[Sensor], None]
_CHECKS: dict[str, SensorCheck] = {}


def _check(func: SensorCheck) -> SensorCheck:
    """Register ``func`` as a named check; its first docstring line is the contract it enforces."""
    _CHECKS[func.__name__] = func
    return func


def sensor_checks() -> dict[str, SensorCheck]:
    """All checks by name, in the order they run."""
    return dict(_CHECKS)


# -- helpers ------------------------------------------------------------------------------


def _fail(message: str) -> CheckFailure:
    return CheckFailure(message)


def _records(sensor: Sensor) -> list[RawRecord]:
    records = list(sensor.sample_records())
    if not records:
        raise _fail("sample_records() returned no records: ship at least one valid sample")
    return records


def _decode(sensor: Sensor, record: RawRecord) -> SensorMessage:
    try:
        message = sensor.decode(record)
    except Exception as exc:
        raise _fail(f"decode of its own sample on topic {record.topic!r} raised {exc!r}") from exc
    if not isinstance(message, SensorMessage):
        raise _fail(f"decode returned {type(message).__name__}, expected SensorMessage")
    return message


def _preprocess(
    sensor: Sensor, message: SensorMessage | None, context: PreprocessContext
) -> dict[str, np.ndarray]:
    try:
        outputs = sensor.preprocess(message, context)
    except Exception as exc:
        raise _fail(f"preprocess raised {exc!r}") from exc
    if not isinstance(outputs, Mapping):
        raise _fail(f"preprocess returned {type(outputs).__name__}, expected dict[str, ndarray]")
    return dict(outputs)


def _data_bytes(record: RawRecord) -> bytes:
    return bytes(record.data)


def _snapshot(value: Any) -> Any:
    """A deep copy that compares equal to the original while it is unmodified."""
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def _equal(a: Any, b: Any) -> bool:
    """Value equality of payloads; structured arrays field by field (padding bytes ignored)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.names:
            return all(_equal(a[name], b[name]) for name in a.dtype.names)
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    return bool(a == b)


def _float_fields(payload: np.ndarray) -> list[str | None]:
    """Float fields of a structured payload (``[None]`` for a plain float array)."""
    if payload.dtype.names:
        names = payload.dtype.names
        return [n for n in names if payload.dtype.fields[n][0].kind == "f"]  # type: ignore[index]
    return [None] if payload.dtype.kind == "f" else []


def _decode_must_reject(sensor: Sensor, record: RawRecord, what: str) -> SensorMessage | None:
    """Decode bad bytes: a DecodeError or a valid message is fine, any other exception is not."""
    try:
        message = sensor.decode(record)
    except DecodeError as exc:
        if not str(exc).strip():
            raise _fail(f"DecodeError on {what} has an empty message") from exc
        return None
    except Exception as exc:
        raise _fail(
            f"decode of {what} raised {type(exc).__name__}: {exc} (expected DecodeError)"
        ) from exc
    if not isinstance(message, SensorMessage):
        raise _fail(f"decode of {what} returned {type(message).__name__}, expected SensorMessage")
    return message


# -- the checks ---------------------------------------------------------------------------


@_check
def check_declares_identity(sensor: Sensor) -> None:
    """The class declares a non-empty ``name``, a ``Modality`` and a ``NonFinitePolicy``."""
    name = getattr(type(sensor), "name", None)
    if not isinstance(name, str) or not name:
        raise _fail("class attribute `name` must be a non-empty str")
    if not isinstance(getattr(type(sensor), "modality", None), Modality):
        raise _fail("class attribute `modality` must be a fusionrt Modality")
    if not isinstance(type(sensor).nonfinite, NonFinitePolicy):
        raise _fail("class attribute `nonfinite` must be a NonFinitePolicy")


@_check
def check_decodes_own_samples(sensor: Sensor) -> None:
    """Every shipped sample decodes to a SensorMessage with an int ``stamp_ns`` and a payload."""
    for record in _records(sensor):
        message = _decode(sensor, record)
        if not isinstance(message.stamp_ns, int) or isinstance(message.stamp_ns, bool):
            raise _fail(f"stamp_ns is {type(message.stamp_ns).__name__}, must be int nanoseconds")
        if not isinstance(message.payload, np.ndarray | str):
            raise _fail(f"payload is {type(message.payload).__name__}, must be ndarray or str")


@_check
def check_specs_match_preprocess(sensor: Sensor) -> None:
    """``preprocess`` returns exactly the tensors ``tensor_specs`` declares (name, shape, dtype)."""
    context = sensor.default_context()
    specs = {spec.name: spec for spec in sensor.tensor_specs(context)}
    if not specs:
        raise _fail("tensor_specs() declared no tensors")
    for record in _records(sensor):
        outputs = _preprocess(sensor, _decode(sensor, record), context)
        if set(outputs) != set(specs):
            raise _fail(f"preprocess returned {sorted(outputs)}, specs declare {sorted(specs)}")
        for name, array in outputs.items():
            if not isinstance(array, np.ndarray) or not specs[name].matches(array):
                got = (getattr(array, "shape", None), getattr(array, "dtype", type(array)))
                raise _fail(f"{name}: got shape/dtype {got}, spec says {specs[name]}")


@_check
def check_missing_message_gives_zeros(sensor: Sensor) -> None:
    """``preprocess(None, ...)`` (sensor missing from the frame) returns zeros of every spec."""
    context = sensor.default_context()
    outputs = _preprocess(sensor, None, context)
    for spec in sensor.tensor_specs(context):
        array = outputs.get(spec.name)
        if array is None or not spec.matches(array):
            raise _fail(f"{spec.name}: missing or wrong shape/dtype for a missing message")
        if np.any(array != 0):
            raise _fail(f"{spec.name}: not all zeros for a missing message")


@_check
def check_deterministic(sensor: Sensor) -> None:
    """Decoding and preprocessing the same record twice gives identical results."""
    context = sensor.default_context()
    for record in _records(sensor):
        first, second = _decode(sensor, record), _decode(sensor, record)
        if first.stamp_ns != second.stamp_ns or not _equal(first.payload, second.payload):
            raise _fail(f"two decodes of the same record on {record.topic!r} differ")
        out1 = _preprocess(sensor, first, context)
        out2 = _preprocess(sensor, second, context)
        for name in out1:
            if not _equal(out1[name], out2.get(name)):
                raise _fail(f"two preprocess calls on the same message differ in {name!r}")


@_check
def check_inputs_not_mutated(sensor: Sensor) -> None:
    """Neither ``decode`` nor ``preprocess`` modifies the record bytes or the message."""
    context = sensor.default_context()
    for record in _records(sensor):
        before = _data_bytes(record)
        message = _decode(sensor, record)
        if _data_bytes(record) != before:
            raise _fail("decode modified the record's bytes")
        payload, meta = _snapshot(message.payload), _snapshot(dict(message.meta))
        stamp = message.stamp_ns
        _preprocess(sensor, message, context)
        if not _equal(message.payload, payload) or dict(message.meta) != meta:
            raise _fail("preprocess modified the message payload or meta")
        if message.stamp_ns != stamp:
            raise _fail("preprocess modified the message stamp")


@_check
def check_truncated_bytes_raise_decode_error(sensor: Sensor) -> None:
    """Truncated records raise ``DecodeError`` (naming what and where), never another exception."""
    for record in _records(sensor):
        data = _data_bytes(record)
        if len(data) < 2:
            continue
        for cut in sorted({1, len(data) // 2, len(data) - 1}):
            truncated = dataclasses.replace(record, data=data[:cut])
            message = _decode_must_reject(sensor, truncated, f"{cut} of {len(data)} bytes")
            if message is not None and sensor.modality not in (Modality.TEXT,):
                raise _fail(
                    f"decode accepted the record truncated to {cut} of {len(data)} bytes "
                    "without a DecodeError"
                )


@_check
def check_garbage_bytes_handled(sensor: Sensor) -> None:
    """Random bytes raise ``DecodeError`` or decode to a valid message, never another exception."""
    rng = random.Random(1234)
    context = sensor.default_context()
    record = _records(sensor)[0]
    for size in (0, 1, 7, 64, 1000, len(_data_bytes(record))):
        garbage = dataclasses.replace(record, data=bytes(rng.getrandbits(8) for _ in range(size)))
        message = _decode_must_reject(sensor, garbage, f"{size} random bytes")
        if message is not None:
            _preprocess(sensor, message, context)


@_check
def check_empty_input_handled(sensor: Sensor) -> None:
    """Empty bytes raise ``DecodeError`` or give a message whose preprocess matches the specs."""
    context = sensor.default_context()
    record = dataclasses.replace(_records(sensor)[0], data=b"")
    message = _decode_must_reject(sensor, record, "empty bytes")
    if message is None:
        return
    specs = {spec.name: spec for spec in sensor.tensor_specs(context)}
    for name, array in _preprocess(sensor, message, context).items():
        if name not in specs or not specs[name].matches(array):
            raise _fail(f"{name}: preprocess of an empty message breaks its spec")


def _with_nonfinite(message: SensorMessage) -> Iterator[SensorMessage]:
    """Copies of ``message`` whose float payload fields hold NaN, +inf and -inf."""
    payload = message.payload
    if not isinstance(payload, np.ndarray) or payload.size == 0:
        return
    for field_name in _float_fields(payload):
        for bad in (np.nan, np.inf, -np.inf):
            corrupted = np.array(payload, copy=True)
            target = corrupted if field_name is None else corrupted[field_name]
            flat = target.reshape(-1)
            flat[:: max(1, flat.size // 7)] = bad
            yield dataclasses.replace(message, payload=corrupted)


@_check
def check_nonfinite_as_declared(sensor: Sensor) -> None:
    """NaN/inf in float payload fields are handled as ``nonfinite`` declares (drop or raise)."""
    policy = type(sensor).nonfinite
    context = sensor.default_context()
    corrupted = [m for r in _records(sensor) for m in _with_nonfinite(_decode(sensor, r))]
    if policy is NonFinitePolicy.NOT_APPLICABLE or not corrupted:
        if policy is not NonFinitePolicy.NOT_APPLICABLE:
            raise _fail(f"declares nonfinite={policy.value} but its payloads have no float fields")
        raise NotApplicable("plugin declares that its payloads cannot hold NaN/inf")
    for message in corrupted:
        if policy is NonFinitePolicy.RAISE:
            try:
                sensor.preprocess(message, context)
            except FusionError:
                continue
            except Exception as exc:
                raise _fail(f"non-finite input raised {exc!r}, expected a FusionError") from exc
            raise _fail("declares nonfinite=raise but preprocess accepted NaN/inf")
        outputs = _preprocess(sensor, message, context)
        for name, array in outputs.items():
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                raise _fail(f"declares nonfinite=drop but output {name!r} holds NaN/inf")


# -- runners ------------------------------------------------------------------------------


def _contract(check: SensorCheck) -> str:
    lines = (check.__doc__ or "").strip().splitlines()
    return lines[0].replace("``", "") if lines else ""


def run_check(name: str, sensor: Sensor, xfail: Mapping[str, str] | None = None) -> CheckResult:
    """Run one named check on ``sensor``; an ``xfail`` entry declares an expected failure."""
    check = _CHECKS[name]
    reason = (xfail or {}).get(name)
    try:
        check(sensor)
    except NotApplicable as exc:
        return CheckResult(name, "not_applicable", str(exc), _contract(check))
    except CheckFailure as exc:
        if reason is not None:
            return CheckResult(name, "xfailed", f"{reason} ({exc})", _contract(check))
        return CheckResult(name, "failed", str(exc), _contract(check))
    if reason is not None:
        detail = f"declared expected failure: {reason}"
        return CheckResult(name, "xpassed", detail, _contract(check))
    return CheckResult(name, "passed", "", _contract(check))


def check_sensor_plugin(sensor: Sensor, xfail: Mapping[str, str] | None = None) -> CheckReport:
    """Run every check on ``sensor`` and return the report (``report.passed``, ``.table()``).

    ``xfail`` maps check names to the reason the plugin is known to fail them.
    """
    unknown = set(xfail or {}) - set(_CHECKS)
    if unknown:
        raise KeyError(f"xfail names unknown checks: {sorted(unknown)}")
    report = CheckReport(sensor=f"{type(sensor).name} ({type(sensor).__qualname__})")
    report.results = [run_check(name, sensor, xfail) for name in _CHECKS]
    return report


def parametrize_sensor_checks(
    factory: Callable[[], Sensor], xfail: Mapping[str, str] | None = None
) -> Callable[[Callable[..., Any]], Any]:
    """Turn every check into its own pytest case.

    Usage::

        @parametrize_sensor_checks(lambda: UltrasonicSensor(), xfail={"check_x": "why"})
        def test_conformance(check):
            check()

    Each ``check`` runs one named check on a fresh instance from ``factory``; a check declared
    in ``xfail`` is marked ``pytest.mark.xfail(strict=True)`` with its reason, and a check that
    does not apply is skipped with the reason.
    """
    import pytest  # noqa: PLC0415  (pytest is a test-time dependency only)

    params = []
    for name in _CHECKS:
        marks = []
        if xfail and name in xfail:
            marks.append(pytest.mark.xfail(reason=xfail[name], strict=True, raises=CheckFailure))
        params.append(pytest.param(_BoundCheck(name, factory), id=name, marks=marks))
    return pytest.mark.parametrize("check", params)


class _BoundCheck:
    """One named check bound to a sensor factory; calling it runs the check."""

    def __init__(self, name: str, factory: Callable[[], Sensor]) -> None:
        self.name = name
        self.factory = factory

    def __call__(self) -> None:
        import pytest  # noqa: PLC0415  (pytest is a test-time dependency only)

        try:
            _CHECKS[self.name](self.factory())
        except NotApplicable as exc:
            pytest.skip(f"{self.name}: {exc}")

    def __repr__(self) -> str:
        return self.name
