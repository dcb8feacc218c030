"""The conformance kit passes a good sensor and fails each kind of broken one."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from fusionrt import DecodeError, RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, Sensor
from fusionrt.runtime.testing import (
    CheckFailure,
    check_sensor_plugin,
    parametrize_sensor_checks,
    sensor_checks,
)


class GoodSensor(Sensor):
    """Float32 vector messages: uint64 stamp, uint32 count, then count float32 readings."""

    name: ClassVar[str] = "good"
    modality: ClassVar[Modality] = Modality.OTHER
    nonfinite: ClassVar[NonFinitePolicy] = NonFinitePolicy.DROP

    def decode(self, raw):
        data = bytes(raw.data)
        if len(data) < 12 or len(data) != 12 + 4 * int.from_bytes(data[8:12], "little"):
            raise DecodeError("bad length", sensor=self.instance, offset=len(data))
        stamp = int.from_bytes(data[:8], "little")
        return SensorMessage(self.instance, stamp, np.frombuffer(data, "<f4", offset=12))

    def tensor_specs(self, context):
        return [TensorSpec("v", (4,), "float32")]

    def preprocess(self, message, context):
        out = np.zeros(4, np.float32)
        if message is not None:
            values = np.asarray(message.payload[:4], np.float32)
            out[: len(values)] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return {"v": out}

    def sample_records(self):
        values = np.arange(6, dtype="<f4")
        data = (7).to_bytes(8, "little") + (6).to_bytes(4, "little") + values.tobytes()
        return [RawRecord("/good", 7, data)]


class WrongShapeSensor(GoodSensor):
    def preprocess(self, message, context):
        if message is None:
            return super().preprocess(message, context)
        return {"v": np.zeros(5, np.float32)}


class CrashingDecodeSensor(GoodSensor):
    def decode(self, raw):
        data = bytes(raw.data)
        stamp = int.from_bytes(data[:8], "little")
        return SensorMessage(self.instance, stamp, np.frombuffer(data, "<f4", offset=12))


class MutatingSensor(GoodSensor):
    def preprocess(self, message, context):
        if message is not None and isinstance(message.payload, np.ndarray):
            message.payload = message.payload * 2
        return super().preprocess(message, context)


class NanLeakingSensor(GoodSensor):
    def preprocess(self, message, context):
        out = np.zeros(4, np.float32)
        if message is not None:
            out[:] = np.asarray(message.payload[:4], np.float32)
        return {"v": out}


class NondeterministicSensor(GoodSensor):
    counter = 0

    def preprocess(self, message, context):
        type(self).counter += 1
        return {"v": np.full(4, self.counter, np.float32)}


class NoSamplesSensor(GoodSensor):
    def sample_records(self):
        return []


def _status(report, name):
    return next(r for r in report.results if r.name == name).status


def test_good_sensor_passes_every_check():
    report = check_sensor_plugin(GoodSensor())
    assert report.passed, report.table()
    assert {r.name for r in report.results} == set(sensor_checks())


@pytest.mark.parametrize(
    ("sensor_cls", "failing_check"),
    [
        (WrongShapeSensor, "check_specs_match_preprocess"),
        (CrashingDecodeSensor, "check_truncated_bytes_raise_decode_error"),
        (CrashingDecodeSensor, "check_garbage_bytes_handled"),
        (MutatingSensor, "check_inputs_not_mutated"),
        (NanLeakingSensor, "check_nonfinite_as_declared"),
        (NondeterministicSensor, "check_deterministic"),
        (NoSamplesSensor, "check_decodes_own_samples"),
    ],
)
def test_broken_sensor_fails_the_check_for_its_defect(sensor_cls, failing_check):
    report = check_sensor_plugin(sensor_cls())
    assert not report.passed
    assert _status(report, failing_check) == "failed"
    with pytest.raises(CheckFailure, match=failing_check):
        report.raise_if_failed()


def test_declared_expected_failure_is_xfailed_and_unexpected_pass_is_reported():
    report = check_sensor_plugin(
        WrongShapeSensor(), xfail={"check_specs_match_preprocess": "shape fixed in v2"}
    )
    assert _status(report, "check_specs_match_preprocess") == "xfailed"
    good = check_sensor_plugin(GoodSensor(), xfail={"check_deterministic": "stale note"})
    assert _status(good, "check_deterministic") == "xpassed" and not good.passed


def test_unknown_xfail_name_is_rejected():
    with pytest.raises(KeyError, match="check_nope"):
        check_sensor_plugin(GoodSensor(), xfail={"check_nope": "typo"})


def test_not_applicable_nonfinite_check_for_image_like_payloads():
    class ImageSensor(GoodSensor):
        nonfinite = NonFinitePolicy.NOT_APPLICABLE

        def decode(self, raw):
            message = super().decode(raw)
            message.payload = np.nan_to_num(np.asarray(message.payload)).astype(np.uint8)
            return message

    report = check_sensor_plugin(ImageSensor())
    assert _status(report, "check_nonfinite_as_declared") == "not_applicable"
    assert report.passed


@parametrize_sensor_checks(GoodSensor)
def test_parametrized_checks_run_each_check(check):
    check()


@parametrize_sensor_checks(WrongShapeSensor, xfail={"check_specs_match_preprocess": "known"})
def test_parametrized_checks_with_declared_failure(check):
    check()


class PaddedPointsSensor(GoodSensor):
    """A strided view of points with padding between fields (like padded PointCloud2 rows)."""

    dtype = np.dtype(
        {"names": ["x", "ring"], "formats": ["<f4", "<u2"], "offsets": [0, 8], "itemsize": 16}
    )

    def decode(self, raw):
        message = super().decode(raw)
        data = bytes(raw.data)[12:]
        points = np.frombuffer(data, self.dtype, count=len(data) // self.dtype.itemsize)
        return SensorMessage(message.sensor, message.stamp_ns, points[::2])

    def preprocess(self, message, context):
        out = np.zeros(4, np.float32)
        if message is not None:
            x = np.nan_to_num(message.payload["x"][:4], nan=0.0, posinf=0.0, neginf=0.0)
            out[: len(x)] = x
        return {"v": out}

    def sample_records(self):
        values = np.arange(16, dtype="<f4")  # four 16-byte points, padding bytes non-zero
        data = (7).to_bytes(8, "little") + (16).to_bytes(4, "little") + values.tobytes()
        return [RawRecord("/padded", 7, data)]


def test_padding_bytes_do_not_count_as_mutation():
    report = check_sensor_plugin(PaddedPointsSensor())
    assert _status(report, "check_inputs_not_mutated") == "passed", report.table()
    assert _status(report, "check_deterministic") == "passed"
