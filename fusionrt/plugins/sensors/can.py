"""CAN bus logs: candump files, DBC decoding with cantools, and the ``can`` sensor's ego vector.

**candump** (can-utils ``candump -L`` / ``-l`` log format), one frame per line::

    (46408.584954) can0 0B4#000000001D0B7A5E        classic frame, 11-bit id (3 hex digits)
    (46408.584954) can1 18DAF110#0211               29-bit id (8 hex digits)
    (46408.584954) can0 123#R  /  123#R4            remote frame (optional length digit)
    (46408.584954) can0 123##1DEADBEEF              CAN FD: ``##``, one flags nibble, data
    (46408.584954) can0 123#1122334455667788_A      classic frame with a raw DLC of 9…F

The time stamp is read exactly from its decimal text (integer and fractional parts, at most 9
fractional digits), never through a float: ``t_ns = sec · 10⁹ + frac · 10^(9 − digits)``.
Blank lines and lines starting with ``#`` are skipped; anything else that does not parse raises
:class:`~fusionrt.DecodeError` naming the file and line number.

**DBC**: :class:`CanDecoder` loads one or more DBC files with cantools (non-strict by default,
because real DBCs such as opendbc's have overlapping signals) and decodes a frame into
``{signal name: physical value}``; an id no DBC knows gives ``{}``.

**CanSensor** (``can``): each record is one CAN frame — ``can_msgs/msg/Frame`` (CDR, as
ros_canopen defines it) or one candump line (msgtype ``fusionrt/candump_line``). Its options map
DBC signals to the slots of a fixed-length **ego vector** (default slots ``speed_mps``,
``yaw_rate_rps``, ``steering_angle_rad``: ISO 8855, positive yaw and steering to the left).
Because a bus interleaves many ids and the synchroniser keeps only the latest message of a
sensor, ``decode`` latches the latest value of every slot: each message's payload is the whole
ego vector as known after that frame (float64, NaN for a slot not yet seen), and
``meta["updated"]`` names the slots that frame set. ``preprocess`` returns it as ``can_ego``
(float32, one value per slot). Non-finite values (a slot never seen, a NaN float signal) are
**dropped**: written as 0 (``nonfinite = DROP``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrt.plugins.ros_decode import as_buffer, deserialize, header_stamp_ns
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import ConfigError, DecodeError, brief
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.messages import RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor

CAN_FRAME_MSGTYPE = "can_msgs/msg/Frame"
#: The msgtype of a record holding one candump ``-L`` line (ASCII, newline optional).
CANDUMP_LINE_MSGTYPE = "fusionrt/candump_line"
CAN_EGO = "can_ego"

#: The shipped DBC: the Toyota (2017+) powertrain messages needed for the ego vector.
DEFAULT_DBC = Path(__file__).with_name("dbc") / "toyota_2017_ego.dbc"
DEFAULT_EGO_SLOTS: tuple[str, ...] = ("speed_mps", "yaw_rate_rps", "steering_angle_rad")
_DEG = math.pi / 180.0
#: Default signal → slot mapping for :data:`DEFAULT_DBC`: the mean of the four wheel speeds
#: (km/h → m/s), the yaw rate (deg/s → rad/s) and the steering wheel angle (deg → rad).
DEFAULT_EGO_SIGNALS: dict[str, dict[str, Any]] = {
    "WHEEL_SPEEDS.WHEEL_SPEED_FL": {"slot": "speed_mps", "scale": 1 / (4 * 3.6)},
    "WHEEL_SPEEDS.WHEEL_SPEED_FR": {"slot": "speed_mps", "scale": 1 / (4 * 3.6)},
    "WHEEL_SPEEDS.WHEEL_SPEED_RL": {"slot": "speed_mps", "scale": 1 / (4 * 3.6)},
    "WHEEL_SPEEDS.WHEEL_SPEED_RR": {"slot": "speed_mps", "scale": 1 / (4 * 3.6)},
    "KINEMATICS.YAW_RATE": {"slot": "yaw_rate_rps", "scale": _DEG},
    "STEER_ANGLE_SENSOR.STEER_ANGLE": {"slot": "steering_angle_rad", "scale": _DEG},
    "STEER_ANGLE_SENSOR.STEER_FRACTION": {"slot": "steering_angle_rad", "scale": _DEG},
}

_SFF_MASK = 0x7FF
_EFF_MASK = 0x1FFFFFFF
_ERR_FLAG = 0x20000000
_MAX_FRAC_DIGITS = 9
_CLASSIC_MAX = 8
_FD_MAX = 64
_FD_LENGTHS = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64})
_LINE = re.compile(
    r"\((?P<sec>[0-9]+)\.(?P<frac>[0-9]+)\)[ \t]+(?P<chan>[^ \t]+)[ \t]+"
    r"(?P<id>[0-9A-Fa-f]+)#(?P<body>[^ \t]*)(?:[ \t]+[TR])?[ \t]*"
)
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


@dataclass(frozen=True, slots=True)
class CanFrame:
    """One CAN frame: stamp (ns), interface, identifier and payload bytes.

    ``is_extended`` is a 29-bit identifier; ``is_remote`` a remote-transmission request (no
    data); ``is_error`` an error frame (``arbitration_id`` holds the error class bits);
    ``is_fd`` a CAN FD frame with ``fd_flags`` (BRS = 1, ESI = 2).
    """

    t_ns: int
    channel: str
    arbitration_id: int
    data: bytes
    is_extended: bool = False
    is_remote: bool = False
    is_error: bool = False
    is_fd: bool = False
    fd_flags: int = 0

    @property
    def dlc(self) -> int:
        """Number of data bytes."""
        return len(self.data)


# -- candump ------------------------------------------------------------------------------


def parse_candump_line(
    line: str, *, path: str | None = None, line_number: int | None = None
) -> CanFrame:
    """Parse one candump ``-L`` line; ``DecodeError`` naming ``path`` and ``line_number``."""

    def bad(reason: str) -> DecodeError:
        shown = line if len(line) <= 80 else line[:77] + "..."
        return DecodeError(
            f"malformed candump line ({reason}): {shown!r}", path=path, line=line_number
        )

    match = _LINE.fullmatch(line.rstrip("\r\n"))
    if match is None:
        raise bad("expected '(<sec>.<frac>) <iface> <id>#<data>'")
    frac = match["frac"]
    if len(frac) > _MAX_FRAC_DIGITS:
        raise bad(f"{len(frac)} fractional digits in the time stamp, at most 9 (nanoseconds)")
    t_ns = int(match["sec"]) * 1_000_000_000 + int(frac) * 10 ** (_MAX_FRAC_DIGITS - len(frac))
    ident, body = match["id"], match["body"]
    value = int(ident, 16)
    is_error = False
    if len(ident) == 3:
        if value > _SFF_MASK:
            raise bad(f"11-bit identifier {ident} above 7FF")
        extended = False
    elif len(ident) == 8:
        is_error = bool(value & _ERR_FLAG)
        if value & ~(_EFF_MASK | _ERR_FLAG):
            raise bad(f"29-bit identifier {ident} has bits above 1FFFFFFF")
        value &= _EFF_MASK
        extended = True
    else:
        raise bad(f"identifier {ident!r} must have 3 or 8 hex digits")
    if body.startswith("#"):  # CAN FD: '##' + flags nibble + data
        if len(body) < 2 or body[1] not in "0123456789abcdefABCDEF":
            raise bad("CAN FD frame needs a flags digit after '##'")
        data_hex = body[2:]
        if not _HEX.fullmatch(data_hex):
            raise bad("data is not whole hex bytes")
        data = bytes.fromhex(data_hex)
        if len(data) not in _FD_LENGTHS:
            raise bad(f"CAN FD data length {len(data)} is not a valid FD length")
        return CanFrame(
            t_ns,
            match["chan"],
            value,
            data,
            extended,
            is_error=is_error,
            is_fd=True,
            fd_flags=int(body[1], 16),
        )
    if body[:1] in ("R", "r"):
        rest = body[1:]
        if rest and not (len(rest) == 1 and rest in "012345678"):
            raise bad("remote frame length must be one digit 0…8")
        return CanFrame(
            t_ns, match["chan"], value, b"", extended, is_remote=True, is_error=is_error
        )
    data_hex, _, raw_dlc = body.partition("_")
    if raw_dlc and (len(raw_dlc) != 1 or raw_dlc not in "9ABCDEFabcdef"):
        raise bad("raw DLC suffix must be one hex digit 9…F")
    if not _HEX.fullmatch(data_hex):
        raise bad("data is not whole hex bytes")
    data = bytes.fromhex(data_hex)
    if len(data) > _CLASSIC_MAX or (raw_dlc and len(data) != _CLASSIC_MAX):
        raise bad(f"classic CAN frame with {len(data)} data bytes")
    return CanFrame(t_ns, match["chan"], value, data, extended, is_error=is_error)


def format_candump_line(frame: CanFrame) -> str:
    """The candump ``-L`` line of ``frame`` (no newline); inverse of :func:`parse_candump_line`."""
    sec, ns = divmod(frame.t_ns, 1_000_000_000)
    stamp = f"({sec}.{ns:09d})" if ns % 1000 else f"({sec}.{ns // 1000:06d})"
    ident = frame.arbitration_id | (_ERR_FLAG if frame.is_error else 0)
    head = f"{ident:08X}" if frame.is_extended else f"{ident:03X}"
    if frame.is_fd:
        body = f"#{frame.fd_flags:X}{frame.data.hex().upper()}"
    elif frame.is_remote:
        body = "R"
    else:
        body = frame.data.hex().upper()
    return f"{stamp} {frame.channel} {head}#{body}"


def read_candump(path: str | Path) -> Iterator[CanFrame]:
    """The frames of a candump ``-L`` log file, in file order (a streaming iterator).

    A malformed line raises ``DecodeError`` with ``path`` and ``line`` (1-based) when the
    iteration reaches it.
    """
    where = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115  (closed by the generator's with)
    except OSError as exc:
        raise DecodeError(f"cannot read candump log: {exc.strerror or exc}", path=where) from None
    with handle:
        for number, raw_line in enumerate(handle, start=1):
            try:
                line = raw_line.decode("ascii")
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"candump line is not ASCII: {exc.reason}",
                    path=where,
                    line=number,
                    column=exc.start,
                ) from None
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            yield parse_candump_line(stripped, path=where, line_number=number)


# -- DBC decoding ---------------------------------------------------------------------------


class CanDecoder:
    """Decode CAN frames into physical signal values with the messages of DBC files.

    ``dbc_paths`` is one path or several (later files win where ids repeat). ``strict=False``
    (the default) accepts DBCs with overlapping signals, as real-world files have.
    """

    def __init__(
        self, dbc_paths: str | Path | Sequence[str | Path], *, strict: bool = False
    ) -> None:
        import cantools  # noqa: PLC0415  (import cost; only CAN users pay it)

        paths = [dbc_paths] if isinstance(dbc_paths, str | Path) else list(dbc_paths)
        if not paths:
            raise ConfigError("CanDecoder needs at least one DBC file", key="dbc_paths")
        database = cantools.database.Database(strict=strict)
        for path in paths:
            try:
                database.add_dbc_file(str(path))
            except OSError as exc:
                raise ConfigError(
                    f"cannot read DBC file: {exc.strerror or exc}", file=str(path), key="dbc_paths"
                ) from None
            except Exception as exc:  # cantools raises its own ParseError/Error types
                raise ConfigError(
                    f"invalid DBC file: {exc}", file=str(path), key="dbc_paths"
                ) from None
        self.paths = [str(p) for p in paths]
        self.database = database
        self._messages: dict[tuple[int, bool], Any] = {
            (int(m.frame_id), bool(m.is_extended_frame)): m for m in database.messages
        }

    def message(self, arbitration_id: int, is_extended: bool = False) -> Any:
        """The cantools message of an id (``None`` when no DBC defines it)."""
        return self._messages.get((arbitration_id, is_extended))

    def message_by_name(self, name: str) -> Any:
        """The cantools message called ``name`` (``ConfigError`` if none)."""
        for message in self._messages.values():
            if message.name == name:
                return message
        raise ConfigError(f"no DBC message named {name!r}", file=", ".join(self.paths))

    def decode(self, frame: CanFrame) -> dict[str, float]:
        """``{signal: physical value}`` of ``frame``; ``{}`` for ids no DBC defines.

        Remote and error frames carry no signals (``{}``). Data that the DBC message cannot
        decode (too short, bad multiplexer) raises ``DecodeError`` naming the id.
        """
        if frame.is_remote or frame.is_error:
            return {}
        message = self._messages.get((frame.arbitration_id, frame.is_extended))
        if message is None:
            return {}
        try:
            values = message.decode(frame.data, decode_choices=False, scaling=True)
        except Exception as exc:  # cantools DecodeError, ValueError, bitstruct errors
            raise DecodeError(
                f"CAN frame 0x{frame.arbitration_id:X} ({message.name}) with "
                f"{len(frame.data)} data bytes cannot be decoded: {exc}",
                arbitration_id=f"0x{frame.arbitration_id:X}",
                channel=frame.channel,
            ) from None
        return {name: float(value) for name, value in values.items()}


# -- the sensor ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SlotSource:
    """The signals of one CAN message that set one ego slot: ``Σ scale·value + offset``."""

    slot: int
    arbitration_id: int
    is_extended: bool
    terms: tuple[tuple[str, float, float], ...]  # (signal, scale, offset)


def decode_can_frame_msg(data: bytes | bytearray | memoryview, **where: Any) -> CanFrame:
    """CDR bytes of a ``can_msgs/msg/Frame`` → :class:`CanFrame` (``t_ns`` = header stamp)."""
    msg: Any = deserialize(as_buffer(data), CAN_FRAME_MSGTYPE, **where)
    dlc = int(msg.dlc)
    if dlc > _CLASSIC_MAX:
        raise DecodeError(f"can_msgs/msg/Frame dlc {dlc} is above 8", **where)
    ident = int(msg.id)
    if ident > (_EFF_MASK if msg.is_extended else _SFF_MASK):
        raise DecodeError(f"can_msgs/msg/Frame id 0x{ident:X} does not fit its id format", **where)
    stamp = header_stamp_ns(msg.header, **where)
    return CanFrame(
        t_ns=stamp,
        channel=str(msg.header.frame_id),
        arbitration_id=ident,
        data=bytes(np.asarray(msg.data, dtype=np.uint8)[:dlc]),
        is_extended=bool(msg.is_extended),
        is_remote=bool(msg.is_rtr),
        is_error=bool(msg.is_error),
    )


def encode_can_frame_msg(frame: CanFrame) -> bytes:
    """CDR bytes of a ``can_msgs/msg/Frame`` holding ``frame`` (classic CAN, ≤ 8 bytes)."""
    if frame.is_fd or len(frame.data) > _CLASSIC_MAX:
        raise ValueError("can_msgs/msg/Frame holds classic CAN frames of at most 8 bytes")
    store = typestore()
    sec, nanosec = divmod(int(frame.t_ns), 1_000_000_000)
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
        frame_id=frame.channel,
    )
    data = np.zeros(8, np.uint8)
    data[: len(frame.data)] = np.frombuffer(frame.data, np.uint8)
    msg = store.types[CAN_FRAME_MSGTYPE](
        header=header,
        id=frame.arbitration_id,
        is_rtr=frame.is_remote,
        is_extended=frame.is_extended,
        is_error=frame.is_error,
        dlc=len(frame.data),
        data=data,
    )
    return bytes(store.serialize_cdr(msg, CAN_FRAME_MSGTYPE))


class CanSensor(Sensor):
    """CAN frames (``can_msgs/msg/Frame`` or candump lines) → a fixed-length ego vector.

    Options: ``dbc_paths`` (default: the shipped Toyota subset), ``slots`` (names of the ego
    vector entries, in order; default ``speed_mps, yaw_rate_rps, steering_angle_rad``),
    ``signals`` (``{"MESSAGE.SIGNAL" or "SIGNAL": slot name or {"slot", "scale", "offset"}}``;
    a slot fed by several signals of one message is their sum, so four wheel speeds scaled by
    1/4 give their mean), ``channels`` (only frames from these interfaces count; default all),
    ``stamp_from`` (``message``: the frame's own stamp, or ``record``). Stamps stay on the
    sensor's clock: the synchroniser applies the rig's ``time_offset_ns``.
    """

    name = "can"
    modality = Modality.CAN
    nonfinite = NonFinitePolicy.DROP
    option_specs: ClassVar[Mapping[str, Option]] = {
        "dbc_paths": Option((str(DEFAULT_DBC),), list, item=Path),
        "slots": Option(DEFAULT_EGO_SLOTS, list, item=str),
        "signals": Option(DEFAULT_EGO_SIGNALS, dict),
        "channels": Option(None, list, item=str, nullable=True),
        "stamp_from": Option("message", str, choices=("message", "record")),
        "strict_dbc": Option(False, bool),
    }

    def __init__(self, instance: str | None = None, topic: str = "", **options: Any) -> None:
        super().__init__(instance, topic, **options)
        if "dbc_paths" in options and "signals" not in options:
            raise ConfigError(
                "a custom dbc_paths needs a 'signals' mapping to ego slots",
                sensor=self.instance,
                key="signals",
            )
        self.slots: tuple[str, ...] = self.options["slots"]
        if not self.slots or len(set(self.slots)) != len(self.slots):
            raise ConfigError(
                "slots must be non-empty, unique names", sensor=self.instance, key="slots"
            )
        try:
            self.decoder = CanDecoder(self.options["dbc_paths"], strict=self.options["strict_dbc"])
        except ConfigError as exc:
            raise ConfigError(exc.message, **{**exc.context, "sensor": self.instance}) from None
        self._sources = self._resolve_signals(self.options["signals"])
        self._by_id: dict[tuple[int, bool], list[_SlotSource]] = {}
        for source in self._sources:
            self._by_id.setdefault((source.arbitration_id, source.is_extended), []).append(source)
        channels = self.options["channels"]
        self._channels = None if channels is None else frozenset(channels)
        self._latch = np.full(len(self.slots), np.nan)

    def _resolve_signals(self, signals: Mapping[str, Any]) -> list[_SlotSource]:
        """Check the signal → slot mapping against the DBC; group it per (slot, message)."""
        where = {"sensor": self.instance, "key": "signals"}
        grouped: dict[int, tuple[Any, list[tuple[str, float, float]]]] = {}
        for qualified, spec in signals.items():
            entry = self._signal_entry(qualified, spec)
            slot = entry["slot"]
            if slot not in self.slots:
                raise ConfigError(
                    f"signal {qualified!r} maps to unknown slot {slot!r} "
                    f"(slots: {list(self.slots)})",
                    **where,
                )
            message, signal = self._find_signal(str(qualified))
            index = self.slots.index(slot)
            previous = grouped.get(index)
            if previous is not None and previous[0] is not message:
                raise ConfigError(
                    f"slot {slot!r} is fed by signals of two CAN messages "
                    f"({previous[0].name}, {message.name}); one message per slot",
                    **where,
                )
            terms = previous[1] if previous else []
            terms.append((signal, entry["scale"], entry["offset"]))
            grouped[index] = (message, terms)
        return [
            _SlotSource(index, int(message.frame_id), bool(message.is_extended_frame), tuple(terms))
            for index, (message, terms) in sorted(grouped.items())
        ]

    def _signal_entry(self, qualified: str, spec: Any) -> dict[str, Any]:
        """``{"slot", "scale", "offset"}`` of one ``signals`` entry: a slot name, or a mapping
        with ``slot`` and optional finite ``scale`` (1) and ``offset`` (0)."""
        entry = {"slot": spec} if isinstance(spec, str) else spec
        if not isinstance(entry, Mapping) or not set(entry) <= {"slot", "scale", "offset"}:
            raise ConfigError(
                f"signal {brief(qualified)} must map to a slot name or to "
                f"{{slot, scale, offset}}, got {brief(spec)}",
                sensor=self.instance,
                key="signals",
            )
        out = {"slot": entry.get("slot"), "scale": 1.0, "offset": 0.0}
        for name in ("scale", "offset"):
            value = entry.get(name, out[name])
            if isinstance(value, bool) or not isinstance(value, int | float):
                value = math.nan
            if not math.isfinite(value):
                raise ConfigError(
                    f"{name} of signal {brief(qualified)} must be a finite number, "
                    f"got {brief(entry.get(name))}",
                    sensor=self.instance,
                    key="signals",
                )
            out[name] = float(value)
        return out

    def _find_signal(self, qualified: str) -> tuple[Any, str]:
        where = {"sensor": self.instance, "key": "signals"}
        if "." in qualified:
            message_name, signal = qualified.split(".", 1)
            message = self.decoder.message_by_name(message_name)
            if signal not in [s.name for s in message.signals]:
                raise ConfigError(f"DBC message {message_name} has no signal {signal!r}", **where)
            return message, signal
        owners = [
            m for m in self.decoder.database.messages if qualified in [s.name for s in m.signals]
        ]
        if len(owners) != 1:
            found = "no DBC message" if not owners else f"{len(owners)} messages"
            raise ConfigError(f"signal {qualified!r} is in {found}; write MESSAGE.SIGNAL", **where)
        return owners[0], qualified

    # -- decode ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the latched values (start of a new drive)."""
        self._latch[:] = np.nan

    def frame_of(self, raw: RawRecord) -> CanFrame:
        """The CAN frame held by ``raw`` (``can_msgs/msg/Frame`` or one candump line)."""
        where = {
            "sensor": self.instance,
            "topic": raw.topic,
            "path": raw.path,
            "record_offset": raw.offset,
        }
        kind = raw.msgtype.replace("/msg/", "/")
        if kind == "can_msgs/Frame":
            return decode_can_frame_msg(raw.data, **where)
        if raw.msgtype == CANDUMP_LINE_MSGTYPE:
            try:
                line = bytes(raw.data).decode("ascii")
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"candump line is not ASCII: {exc.reason}", **where, offset=exc.start
                ) from None
            try:
                return parse_candump_line(line.strip(), path=raw.path)
            except DecodeError as exc:
                raise DecodeError(exc.message, **where, offset=0) from None
        raise DecodeError(
            f"can cannot read msgtype {raw.msgtype!r} (known: {CAN_FRAME_MSGTYPE}, "
            f"{CANDUMP_LINE_MSGTYPE})",
            **where,
            offset=0,
        )

    def decode(self, raw: RawRecord) -> SensorMessage:
        """One CAN frame → the latched ego vector after it (float64, NaN = not seen yet)."""
        frame = self.frame_of(raw)
        updated: list[str] = []
        sources = self._by_id.get((frame.arbitration_id, frame.is_extended))
        if sources and (self._channels is None or frame.channel in self._channels):
            try:
                values = self.decoder.decode(frame)
            except DecodeError as exc:
                raise DecodeError(
                    exc.message,
                    sensor=self.instance,
                    topic=raw.topic,
                    path=raw.path,
                    record_offset=raw.offset,
                    offset=0,
                    **exc.context,
                ) from None
            for source in sources:
                if values and all(term[0] in values for term in source.terms):
                    self._latch[source.slot] = sum(
                        values[signal] * scale + offset for signal, scale, offset in source.terms
                    )
                    updated.append(self.slots[source.slot])
        stamp = (
            frame.t_ns if self.options["stamp_from"] == "message" and frame.t_ns else (raw.stamp_ns)
        )
        return SensorMessage(
            sensor=self.instance,
            stamp_ns=int(stamp),
            payload=self._latch.copy(),
            frame_id=frame.channel,
            topic=raw.topic or self.topic,
            meta={
                "arbitration_id": frame.arbitration_id,
                "channel": frame.channel,
                "data": frame.data.hex().upper(),
                "updated": tuple(updated),
                "slots": self.slots,
            },
        )

    # -- preprocess -----------------------------------------------------------------------

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """``can_ego``: one float32 per slot."""
        return [TensorSpec(CAN_EGO, (len(self.slots),), "float32", self.name)]

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """The ego vector as float32; non-finite entries (unknown slots, NaN) become 0."""
        out = np.zeros(len(self.slots), np.float32)
        if message is None:
            return {CAN_EGO: out}
        payload = np.asarray(message.payload, dtype=np.float64).reshape(-1)
        if payload.size != out.size:
            raise DecodeError(
                f"can payload has {payload.size} values, the ego vector {out.size} slots",
                sensor=message.sensor or self.instance,
                topic=message.topic,
            )
        finite = np.isfinite(payload)
        limit = float(np.finfo(np.float32).max)
        out[finite] = np.clip(payload[finite], -limit, limit)
        return {CAN_EGO: out}

    # -- samples --------------------------------------------------------------------------

    def sample_records(self) -> list[RawRecord]:
        """Frames of the shipped DBC's messages, as CDR Frames and candump lines."""
        return can_sample_records(self.topic or "/can/rx")

    def default_context(self) -> PreprocessContext:
        """Any geometry: the ego vector does not depend on it."""
        return PreprocessContext(geometry=ModelGeometry(), sensor_names=(self.instance,))


def can_sample_frames() -> list[CanFrame]:
    """Real frames of the comma2k19 example drive (Toyota RAV4; MIT), one per ego message."""

    def at(stamp: str) -> int:
        sec, frac = stamp.split(".")
        return int(sec) * 1_000_000_000 + int(frac) * 1_000

    return [  # the first frame of each message on can0 in raw_can.candump.log
        CanFrame(at("46408.584954"), "can0", 0x0B4, bytes.fromhex("000000001D0B7A5E")),  # SPEED
        CanFrame(at("46408.584959"), "can0", 0x025, bytes.fromhex("00001000C00000FD")),  # STEER
        CanFrame(at("46408.584970"), "can0", 0x024, bytes.fromhex("01FE01D541F980BB")),  # KINEM.
        CanFrame(at("46408.589503"), "can0", 0x0AA, bytes.fromhex("25B525B525A0258D")),  # WHEELS
    ]


def can_sample_records(topic: str = "/can/rx") -> list[RawRecord]:
    """:func:`can_sample_frames` as ``can_msgs/msg/Frame`` records and as candump lines."""
    frames = can_sample_frames()
    records = [RawRecord(topic, f.t_ns, encode_can_frame_msg(f), CAN_FRAME_MSGTYPE) for f in frames]
    records += [
        RawRecord(topic, f.t_ns, format_candump_line(f).encode("ascii"), CANDUMP_LINE_MSGTYPE)
        for f in frames
    ]
    return records


__all__ = [
    "CANDUMP_LINE_MSGTYPE",
    "CAN_EGO",
    "CAN_FRAME_MSGTYPE",
    "DEFAULT_DBC",
    "DEFAULT_EGO_SIGNALS",
    "DEFAULT_EGO_SLOTS",
    "CanDecoder",
    "CanFrame",
    "CanSensor",
    "can_sample_records",
    "decode_can_frame_msg",
    "encode_can_frame_msg",
    "format_candump_line",
    "parse_candump_line",
    "read_candump",
]
