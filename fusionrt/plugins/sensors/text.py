"""Text and log sensors: free-text log lines (``text``) and CAN bus frames (``can``).

This module is the public home of both log kinds; the CAN half lives in :mod:`.can` and the
tokenizer in :mod:`.tokenizer`, re-exported here (``read_candump``, ``CanFrame``,
``CanDecoder``, ``CanSensor``, ``HashingTokenizer``).

**TextLogSensor** (``text``) reads driver/system logs and V2X or infrastructure notes:

* decode: ``std_msgs/msg/String`` (CDR), ``rcl_interfaces/msg/Log`` (ROS 2 ``/rosout``; read as
  ``"<level> <logger>: <msg>"``) and plain UTF-8 log lines (msgtype ``fusionrt/text_line``,
  ``text/plain`` or empty). Invalid UTF-8 raises :class:`~fusionrt.DecodeError` with the byte
  offset. The payload is the record's text (``str``). The stamp is the message's own
  (``rcl_interfaces/msg/Log``) or the record's (option ``stamp_from="record"`` forces it), on
  the sensor's clock: the synchroniser applies the rig's ``time_offset_ns``.
* Because the synchroniser keeps only a sensor's latest message, the sensor remembers the
  lines it decoded: ``meta["recent"]`` holds ``(stamp_ns, text)`` of the lines within
  ``window_ns`` (default 30 s, at most ``max_lines``, default 8) up to this one, oldest first,
  on the sensor's own clock; ``meta["sensor_stamp_ns"]`` is the message's stamp on that clock,
  so preprocess shifts the lines by whatever the synchroniser added to the message's stamp
  (the rig's ``time_offset_ns``) before comparing them with the frame's stamp.
* preprocess: the recent lines whose stamp lies in ``[reference − window_ns, reference]``
  (reference = the frame's ``reference_stamp_ns``, else the message stamp) are tokenized
  newest first by :class:`HashingTokenizer` into ``text_tokens`` (int64, ``token_length``),
  ``text_mask`` (float32, 1 = token) and ``text_numbers`` (float32, the value of each number
  token) — ``"fog advisory, visibility 50 m"`` keeps the 50 as a value next to its unit.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.can import (
    CAN_FRAME_MSGTYPE,
    CANDUMP_LINE_MSGTYPE,
    CanDecoder,
    CanFrame,
    CanSensor,
    format_candump_line,
    parse_candump_line,
    read_candump,
)
from fusionrt.plugins.sensors.tokenizer import (
    NUM_ID,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    HashingTokenizer,
    TokenizedText,
)
from fusionrt.runtime.errors import DecodeError
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor

STRING_MSGTYPE = "std_msgs/msg/String"
LOG_MSGTYPE = "rcl_interfaces/msg/Log"
#: The msgtype of a record holding plain UTF-8 log text (one or more lines).
TEXT_LINE_MSGTYPE = "fusionrt/text_line"
TEXT_LINE_MSGTYPES = frozenset({TEXT_LINE_MSGTYPE, "text/plain", ""})

TEXT_TOKENS = "text_tokens"
TEXT_MASK = "text_mask"
TEXT_NUMBERS = "text_numbers"

#: ``rcl_interfaces/msg/Log`` severity levels.
LOG_LEVELS = {10: "debug", 20: "info", 30: "warn", 40: "error", 50: "fatal"}


class TextLogSensor(Sensor):
    """Log lines and V2X notes → fixed-length token ids, mask and number values.

    Options: ``window_ns`` (how far back lines are combined), ``max_lines`` (at most that many
    recent lines), ``stamp_from`` (``message``/``record``).
    """

    name = "text"
    modality = Modality.TEXT
    nonfinite = NonFinitePolicy.NOT_APPLICABLE
    option_specs: ClassVar[Mapping[str, Option]] = {
        "window_ns": Option(30_000_000_000, int, minimum=0),
        "max_lines": Option(8, int, minimum=1),
        "stamp_from": Option("message", str, choices=("message", "record")),
    }

    def __init__(self, instance: str | None = None, topic: str = "", **options: Any) -> None:
        super().__init__(instance, topic, **options)
        self._recent: list[tuple[int, str]] = []  # oldest first
        self._lock = threading.Lock()
        self._tokenizers: dict[tuple[int, int], HashingTokenizer] = {}

    # -- decode ---------------------------------------------------------------------------

    def text_of(self, raw: RawRecord) -> tuple[str, int | None]:
        """The text of a record and its own stamp (``None`` when the format has none)."""
        where = {
            "sensor": self.instance,
            "topic": raw.topic,
            "path": raw.path,
            "record_offset": raw.offset,
        }
        kind = raw.msgtype.replace("/msg/", "/")
        if kind in ("std_msgs/String", "rcl_interfaces/Log"):
            msgtype = STRING_MSGTYPE if kind == "std_msgs/String" else LOG_MSGTYPE
            try:
                msg: Any = typestore().deserialize_cdr(memoryview(raw.data).cast("B"), msgtype)
            except Exception as exc:  # rosbags SerdeError (invalid UTF-8 included), struct errors
                raise DecodeError(
                    f"not a valid CDR {msgtype} message ({len(raw.data)} bytes): {exc}",
                    **where,
                    offset=0,
                ) from None
            if msgtype == STRING_MSGTYPE:
                return str(msg.data), None
            level = LOG_LEVELS.get(int(msg.level), f"level{int(msg.level)}")
            stamp = int(msg.stamp.sec) * 1_000_000_000 + int(msg.stamp.nanosec)
            return f"{level} {msg.name}: {msg.msg}", (stamp or None)
        if raw.msgtype in TEXT_LINE_MSGTYPES or raw.msgtype.startswith("text/"):
            try:
                return bytes(raw.data).decode("utf-8"), None
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"log line is not valid UTF-8: {exc.reason}", **where, offset=exc.start
                ) from None
        raise DecodeError(
            f"text cannot read msgtype {raw.msgtype!r} (known: {STRING_MSGTYPE}, {LOG_MSGTYPE}, "
            f"{TEXT_LINE_MSGTYPE})",
            **where,
            offset=0,
        )

    def decode(self, raw: RawRecord) -> SensorMessage:
        """One record → its text; ``meta["recent"]`` adds the lines of the window before it."""
        text, own_stamp = self.text_of(raw)
        text = " ".join(text.split())  # one line: newlines and runs of blanks → one space
        stamp = raw.stamp_ns
        if self.options["stamp_from"] == "message" and own_stamp is not None:
            stamp = own_stamp
        stamp = int(stamp)
        recent = self._remember(stamp, text)
        return SensorMessage(
            sensor=self.instance,
            stamp_ns=stamp,
            payload=text,
            frame_id=self.instance,
            topic=raw.topic or self.topic,
            meta={"recent": recent, "msgtype": raw.msgtype, "sensor_stamp_ns": stamp},
        )

    def _remember(self, stamp: int, text: str) -> tuple[tuple[int, str], ...]:
        """Add a line to the window (once: decoding a record twice keeps one copy)."""
        window = self.options["window_ns"]
        with self._lock:
            entry = (stamp, text)
            if entry not in self._recent:
                bisect.insort(self._recent, entry)
            newest = self._recent[-1][0]
            keep = [e for e in self._recent if e[0] >= newest - window]
            self._recent = keep[-self.options["max_lines"] :]
            upto = [e for e in self._recent if e[0] <= stamp]
            if entry not in upto:  # a line older than the window is still its own message
                upto.append(entry)
            return tuple(upto)

    def reset(self) -> None:
        """Forget the remembered lines (start of a new drive)."""
        with self._lock:
            self._recent = []

    # -- preprocess -----------------------------------------------------------------------

    def tokenizer(self, geometry: ModelGeometry) -> HashingTokenizer:
        """The tokenizer for the model's vocabulary size and token length (cached)."""
        key = (int(geometry.vocab_size), int(geometry.token_length))
        tokenizer = self._tokenizers.get(key)
        if tokenizer is None:
            tokenizer = HashingTokenizer(vocab_size=key[0], length=key[1])
            self._tokenizers[key] = tokenizer
        return tokenizer

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """``text_tokens`` (int64), ``text_mask`` and ``text_numbers`` (float32), each (L,)."""
        length = int(context.geometry.token_length)
        return [
            TensorSpec(TEXT_TOKENS, (length,), "int64", self.name),
            TensorSpec(TEXT_MASK, (length,), "float32", self.name),
            TensorSpec(TEXT_NUMBERS, (length,), "float32", self.name),
        ]

    def lines_for(self, message: SensorMessage, reference_ns: int | None) -> list[str]:
        """The texts combined for a frame at ``reference_ns``, newest first.

        The remembered lines are stamped on the sensor's clock and ``message`` may come from
        the synchroniser stamped on the common clock: the lines move by the same offset
        (otherwise, with a log clock ahead of the common one, the newest lines — this message
        included — would look later than the frame and be left out).
        """
        recent = message.meta.get("recent") or ((message.stamp_ns, str(message.payload)),)
        shift = message.stamp_ns - int(message.meta.get("sensor_stamp_ns", message.stamp_ns))
        end = message.stamp_ns if reference_ns is None else max(reference_ns, message.stamp_ns)
        start = end - self.options["window_ns"]
        lines = [text for stamp, text in recent if start <= stamp + shift <= end and text]
        return lines[::-1]

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """Recent lines → ``text_tokens``, ``text_mask``, ``text_numbers``; ``None`` → zeros."""
        if message is None:
            return {spec.name: spec.zeros() for spec in self.tensor_specs(context)}
        if not isinstance(message.payload, str):
            raise DecodeError(
                "text payload must be a str", sensor=message.sensor, topic=message.topic
            )
        encoded = self.tokenizer(context.geometry).encode(
            self.lines_for(message, context.reference_stamp_ns)
        )
        return {TEXT_TOKENS: encoded.ids, TEXT_MASK: encoded.mask, TEXT_NUMBERS: encoded.numbers}

    # -- samples --------------------------------------------------------------------------

    def sample_records(self) -> list[RawRecord]:
        """A V2X advisory (String), a road-works note (plain line) and a ``/rosout`` warning."""
        return text_sample_records(self.topic or "/v2x/notes")

    def default_context(self) -> PreprocessContext:
        """The default geometry (token length 32, vocabulary 4096)."""
        return PreprocessContext(geometry=ModelGeometry(), sensor_names=(self.instance,))


SAMPLE_STAMP_NS = 1_700_000_000_000_000_000


def text_sample_records(topic: str = "/v2x/notes") -> list[RawRecord]:
    """Deterministic records of every format the text sensor reads."""
    store = typestore()
    string = store.types[STRING_MSGTYPE](data="Fog advisory, visibility 50 m")
    time = store.types["builtin_interfaces/msg/Time"](sec=SAMPLE_STAMP_NS // 10**9 + 2, nanosec=0)
    log = store.types[LOG_MSGTYPE](
        stamp=time,
        level=30,
        name="planner",
        msg="lidar_top rate dropped to 7.5 Hz",
        file="planner.cpp",
        function="tick",
        line=42,
    )
    return [
        RawRecord(
            topic,
            SAMPLE_STAMP_NS,
            bytes(store.serialize_cdr(string, STRING_MSGTYPE)),
            STRING_MSGTYPE,
        ),
        RawRecord(
            topic,
            SAMPLE_STAMP_NS + 1_000_000_000,
            b"Road works, right lane closed for 300 m",
            TEXT_LINE_MSGTYPE,
        ),
        RawRecord(
            "/rosout",
            SAMPLE_STAMP_NS + 2_000_000_000,
            bytes(store.serialize_cdr(log, LOG_MSGTYPE)),
            LOG_MSGTYPE,
        ),
    ]


@hookimpl
def fusionrt_sensors() -> list[type[Sensor]]:
    """The built-in log sensors: free text and CAN."""
    return [TextLogSensor, CanSensor]


__all__ = [
    "CANDUMP_LINE_MSGTYPE",
    "CAN_FRAME_MSGTYPE",
    "LOG_MSGTYPE",
    "NUM_ID",
    "PAD_ID",
    "SEP_ID",
    "STRING_MSGTYPE",
    "TEXT_LINE_MSGTYPE",
    "UNK_ID",
    "CanDecoder",
    "CanFrame",
    "CanSensor",
    "HashingTokenizer",
    "TextLogSensor",
    "TokenizedText",
    "format_candump_line",
    "parse_candump_line",
    "read_candump",
    "text_sample_records",
]
