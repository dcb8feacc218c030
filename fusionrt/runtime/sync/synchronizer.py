"""The synchroniser: sensor messages in, fused :class:`~fusionrt.runtime.messages.Frame` out.

:class:`Synchronizer` sits between the sensors' ``decode`` and their ``preprocess``. For every
:class:`~fusionrt.runtime.messages.SensorMessage` it

1. puts the stamp on the common clock: ``stamp_ns + time_offsets_ns[sensor]`` (the rig's
   ``SensorCalibration.time_offset_ns``, "added to the sensor's own stamps"); the frame holds a
   copy with the corrected stamp, the input message is never mutated;
2. guards the stream (:class:`~fusionrt.runtime.sync.stamps.StampGuard`): a stamp ``<= 0``
   is dropped (``implausible_stamp``); one far from its stream's recent stamps or from the
   clock is held until the stream's next messages show whether it lied (then it is dropped,
   ``implausible_stamp``) or every active stream jumped (a bag looping, a recording paused):
   then the whole synchroniser ends its timeline as :meth:`Synchronizer.flush` would (frames
   that can still be formed are emitted, buffered messages are reported as ``reset``), reports
   the jump once through ``on_timeline_reset`` and replays the held messages into the new
   timeline. A stamp equal to the stream's previous one is dropped (``duplicate_stamp``), one
   slightly earlier (``stamp_backwards``). The first timeline starts once a few primary
   messages agree (held until then, then replayed), so a lying first stamp cannot define it;
3. advances the virtual clock (the largest accepted stamp) and reports sensors silent for longer
   than their expected period × ``stale_factor`` through ``on_stale(sensor, last_stamp_ns,
   now_ns)``;
4. routes the message to the primary policy (:class:`ApproximateTimePolicy` or
   :class:`CollectorPolicy`), which decides the frames, or to the :class:`LatestPolicy`, which
   is sampled at each frame's stamp.

Every message that ends in no frame is reported once through
``on_drop(sensor, stamp_ns, reason, detail)`` (``stamp_ns`` on the common clock) and counted in
:attr:`Synchronizer.counters`. The two callbacks have the signatures of the observer hooks
``fusionrt_sensor_fault`` and ``fusionrt_sensor_stale``. Nothing reads the wall clock: the same
input gives bit-identical frames at any replay speed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from fusionrt.runtime.messages import Frame, SensorMessage
from fusionrt.runtime.sync._common import SyncConfigError, as_stamp
from fusionrt.runtime.sync.approximate_time import ApproximateTimePolicy
from fusionrt.runtime.sync.collector import CollectedFrame, CollectorPolicy
from fusionrt.runtime.sync.drops import (
    DropCallback,
    DropCounters,
    DropReason,
    StaleCallback,
    StaleDetector,
)
from fusionrt.runtime.sync.latest import LatestPolicy, LatestSpec
from fusionrt.runtime.sync.stamps import StampGuard, TimelineJump, Verdict

__all__ = ["Synchronizer", "TimelineResetCallback"]

_APPROXIMATE, _COLLECTOR, _LATEST = 0, 1, 2
_ACCEPT = Verdict.ACCEPT

#: Drop reason of a message whose sensor the synchroniser does not know.
UNKNOWN_SENSOR = DropReason.UNKNOWN_SENSOR

#: ``on_timeline_reset(jump)``: called once per confirmed timeline jump.
TimelineResetCallback = Callable[[TimelineJump], None]


class Synchronizer:
    """Applies time offsets, guards each stream, runs the policies and builds frames.

    ``policy`` is the primary policy. For an :class:`ApproximateTimePolicy`, ``sensors`` names
    its streams in order (stream ``i`` is ``sensors[i]``) and the frame stamp is the stamp of
    ``reference``'s message (default: the first sensor). For a :class:`CollectorPolicy` the
    sensors are the policy's and the frame stamp is the collector's. ``latest`` (a
    :class:`LatestPolicy`, or a mapping of sensor names to :class:`LatestSpec`) adds slow or
    continuous sensors sampled at each frame stamp. See the module docstring for the rest.

    The synchroniser installs its own ``on_drop`` on the policies it is given (set
    :attr:`on_drop` on the synchroniser, not on them).
    """

    def __init__(
        self,
        policy: ApproximateTimePolicy | CollectorPolicy,
        sensors: Sequence[str] | None = None,
        *,
        latest: LatestPolicy | Mapping[str, LatestSpec] | None = None,
        reference: str | None = None,
        time_offsets_ns: Mapping[str, int] | None = None,
        on_drop: DropCallback | None = None,
        on_stale: StaleCallback | None = None,
        expected_periods_ns: Mapping[str, int] | None = None,
        stale_factor: float = 3.0,
        on_timeline_reset: TimelineResetCallback | None = None,
        jump_backward_ns: int = 1_000_000_000,
        jump_forward_ns: int = 5_000_000_000,
        confirm_messages: int = 3,
        max_held: int = 128,
    ) -> None:
        self.policy = policy
        self._approx: ApproximateTimePolicy | None = None
        self._collector: CollectorPolicy | None = None
        self.reference: str | None
        if isinstance(policy, ApproximateTimePolicy):
            self._approx = policy
            if sensors is None or len(sensors) != policy.num_streams:
                raise SyncConfigError(
                    f"an ApproximateTimePolicy of {policy.num_streams} streams needs that many "
                    f"sensor names, got {sensors!r}"
                )
            primary = tuple(sensors)
            self._kind = _APPROXIMATE
            self.reference = primary[0] if reference is None else reference
            if self.reference not in primary:
                raise SyncConfigError(f"reference {reference!r} is not one of {primary!r}")
            self._reference_index = primary.index(self.reference)
        elif isinstance(policy, CollectorPolicy):
            if sensors is not None and tuple(sensors) != policy.sensors:
                raise SyncConfigError(
                    f"sensors {sensors!r} differ from the collector's {policy.sensors!r}"
                )
            if reference is not None and reference != policy.reference:
                raise SyncConfigError(
                    f"reference {reference!r} differs from the collector's {policy.reference!r}"
                )
            self._collector = policy
            primary = policy.sensors
            self._kind = _COLLECTOR
            self.reference = policy.reference
            self._reference_index = -1
        else:
            raise SyncConfigError(
                f"policy must be an ApproximateTimePolicy or a CollectorPolicy, got {policy!r}"
            )
        if len(set(primary)) != len(primary):
            raise SyncConfigError(f"sensor names must be distinct, got {primary!r}")
        if latest is not None and not isinstance(latest, LatestPolicy):
            latest = LatestPolicy(latest)
        self.latest: LatestPolicy | None = latest
        slow = latest.sensors if latest is not None else ()
        both = set(primary) & set(slow)
        if both:
            raise SyncConfigError(f"sensors {sorted(both)} are both in the policy and in latest")
        self.primary_sensors: tuple[str, ...] = primary
        self.sensors: tuple[str, ...] = primary + tuple(slow)
        self._routes: dict[str, tuple[int, int]] = {}
        for index, name in enumerate(primary):
            self._routes[name] = (self._kind, index)
        for name in slow:
            self._routes[name] = (_LATEST, -1)

        offsets = dict(time_offsets_ns or {})
        unknown = set(offsets) - set(self.sensors)
        if unknown:
            raise SyncConfigError(f"time_offsets_ns names unknown sensors {sorted(unknown)}")
        self.time_offsets_ns: dict[str, int] = {
            name: as_stamp(offsets.get(name, 0), "time_offsets_ns") for name in self.sensors
        }
        for name, value in (
            ("jump_backward_ns", jump_backward_ns),
            ("jump_forward_ns", jump_forward_ns),
            ("confirm_messages", confirm_messages),
            ("max_held", max_held),
        ):
            if as_stamp(value, name) <= 0:
                raise SyncConfigError(f"{name} must be > 0, got {value}")
        if max_held < confirm_messages:
            raise SyncConfigError(
                f"max_held ({max_held}) must be >= confirm_messages ({confirm_messages})"
            )
        self.guard = StampGuard(
            primary,
            self._report,
            jump_backward_ns=jump_backward_ns,
            jump_forward_ns=jump_forward_ns,
            confirm_messages=confirm_messages,
            max_held=max_held,
        )
        self.on_timeline_reset = on_timeline_reset
        periods = dict(expected_periods_ns or {})
        unknown = set(periods) - set(self.sensors)
        if unknown:
            raise SyncConfigError(f"expected_periods_ns names unknown sensors {sorted(unknown)}")
        self.stale = StaleDetector(periods, stale_factor, on_stale)
        self._watch_stale = bool(periods)

        self._own_counters = DropCounters()  # the synchroniser's own drops (guards, routes)
        self.messages_in = 0
        self.frames_out = 0
        self.resets = 0  # timeline resets (confirmed jumps)
        self.last_reset: TimelineJump | None = None
        self._seq = 0
        self._now: int | None = None
        self._on_drop: DropCallback | None = None
        self.on_drop = on_drop

    # -- drop reports ----------------------------------------------------------------------

    @property
    def on_drop(self) -> DropCallback | None:
        """``on_drop(sensor, stamp_ns, reason, detail)``, called once per lost message."""
        return self._on_drop

    @on_drop.setter
    def on_drop(self, callback: DropCallback | None) -> None:
        # The policies count their own drops; they only call back (and format details) when
        # someone listens.
        self._on_drop = callback
        if callback is None:
            for policy in (self._approx, self._collector, self.latest):
                if policy is not None:
                    policy.on_drop = None
            return
        if self._approx is not None:
            names = self.primary_sensors
            self._approx.on_drop = lambda stream, stamp, _item, reason, detail: callback(
                names[stream], stamp, reason, detail
            )
        forward = lambda sensor, stamp, _item, reason, detail: callback(  # noqa: E731
            sensor, stamp, reason, detail
        )
        if self._collector is not None:
            self._collector.on_drop = forward
        if self.latest is not None:
            self.latest.on_drop = forward

    @property
    def counters(self) -> DropCounters:
        """Drops per ``(sensor, reason)``: the synchroniser's own and its policies' (a copy)."""
        merged = DropCounters()
        merged.counts.update(self._own_counters.counts)
        if self._approx is not None:
            names = self.primary_sensors
            for (stream, reason), count in self._approx.counters.counts.items():
                merged.add(names[cast(int, stream)], reason, count)
        for policy in (self._collector, self.latest):
            if policy is not None:
                for (sensor, reason), count in policy.counters.counts.items():
                    merged.add(sensor, reason, count)
        return merged

    # -- construction helpers --------------------------------------------------------------

    @classmethod
    def approximate_time(
        cls,
        sensors: Sequence[str],
        *,
        queue_size: int = 10,
        max_interval_ns: int | None = None,
        age_penalty: float = 0.1,
        inter_message_lower_bounds_ns: Mapping[str, int] | None = None,
        **options: Any,
    ) -> Synchronizer:
        """A synchroniser around an :class:`ApproximateTimePolicy` over ``sensors``.

        ``inter_message_lower_bounds_ns`` maps sensor names to bounds (others: 0); ``options``
        are the :class:`Synchronizer` keywords.
        """
        bounds = None
        if inter_message_lower_bounds_ns is not None:
            unknown = set(inter_message_lower_bounds_ns) - set(sensors)
            if unknown:
                raise SyncConfigError(f"lower bounds name unknown sensors {sorted(unknown)}")
            bounds = [inter_message_lower_bounds_ns.get(s, 0) for s in sensors]
        policy = ApproximateTimePolicy(
            len(sensors),
            queue_size,
            max_interval_ns=max_interval_ns,
            age_penalty=age_penalty,
            inter_message_lower_bounds_ns=bounds,
        )
        return cls(policy, list(sensors), **options)

    @classmethod
    def collector(
        cls,
        sensors: Iterable[str],
        *,
        reference: str | None = None,
        period_ns: int | None = None,
        phase_ns: int = 0,
        tolerance_ns: int | Mapping[str, int] = 50_000_000,
        timeout_ns: int = 100_000_000,
        queue_size: int = 64,
        emit_empty: bool = False,
        min_period_ns: Mapping[str, int] | None = None,
        **options: Any,
    ) -> Synchronizer:
        """A synchroniser around a :class:`CollectorPolicy`; ``options`` as for the class."""
        policy = CollectorPolicy(
            sensors,
            reference=reference,
            period_ns=period_ns,
            phase_ns=phase_ns,
            tolerance_ns=tolerance_ns,
            timeout_ns=timeout_ns,
            queue_size=queue_size,
            emit_empty=emit_empty,
            min_period_ns=min_period_ns,
        )
        return cls(policy, **options)

    # -- public API ------------------------------------------------------------------------

    @property
    def now_ns(self) -> int | None:
        """The virtual clock: the largest accepted stamp (common clock) since the last reset."""
        return self._now

    def push(self, message: SensorMessage) -> list[Frame]:
        """Add one decoded message; return the frames it completes, oldest first."""
        sensor = message.sensor
        self.messages_in += 1
        route = self._routes.get(sensor)
        offset = self.time_offsets_ns.get(sensor, 0)
        stamp = message.stamp_ns
        if type(stamp) is not int:
            stamp = as_stamp(stamp, f"{sensor} stamp_ns")
        if offset:
            stamp += offset
        if route is None:
            self._report(
                sensor, stamp, UNKNOWN_SENSOR, f"sensor {sensor!r} is not one of {self.sensors!r}"
            )
            return []
        return self._guarded(sensor, stamp, message, route)

    def advance(self, now_ns: int) -> list[Frame]:
        """Move the virtual clock to ``now_ns`` without a message (a source's heartbeat).

        Emits the collector frames whose deadline it reaches and reports stale sensors; the
        ApproximateTime policy has no deadlines and emits nothing here.
        """
        now_ns = as_stamp(now_ns, "now_ns")
        frames: list[Frame] = []
        if self._now is not None and now_ns <= self._now:
            return frames
        self._now = now_ns
        if self.stale.limits_ns:
            self.stale.check(now_ns)
        if self._collector is not None:
            for collected in self._collector.advance(now_ns):
                frames.append(self._frame_from_collected(collected))
        return frames

    def flush(self) -> list[Frame]:
        """End the input: emit the frames that can still be formed, report the rest
        (``end_of_input``; held stamps: ``implausible_stamp``), and start afresh (clock, stream
        guards and staleness reset)."""
        start = self.guard.settle()  # a short input that never started its timeline
        frames = self._jump(start) if start is not None else []
        self.guard.drop_held("; the input ended while it was held")
        return frames + self._end_timeline(DropReason.END_OF_INPUT, restart=False)

    # -- internals -------------------------------------------------------------------------

    def _report(self, sensor: str, stamp: int | None, reason: str, detail: str) -> None:
        self._own_counters.add(sensor, reason)
        if self._on_drop is not None:
            self._on_drop(sensor, stamp, reason, detail)

    def _guarded(
        self, sensor: str, stamp: int, message: SensorMessage, route: tuple[int, int]
    ) -> list[Frame]:
        """``message`` (``stamp`` on the common clock) through the stamp guard; once accepted:
        the clock, staleness, then its policy."""
        verdict = self.guard.check(sensor, stamp, message, self._now)
        if verdict is not _ACCEPT:
            return self._jump(verdict) if isinstance(verdict, TimelineJump) else []
        if stamp != message.stamp_ns:  # on the common clock: a copy, the input is not mutated
            message = SensorMessage(
                sensor,
                stamp,
                message.payload,
                message.frame_id,
                message.seq,
                message.topic,
                message.meta,
            )
        frames: list[Frame] = []
        now = self._now
        advanced = now is None or stamp > now
        if advanced:
            self._now = now = stamp
        if self._watch_stale:
            stale = self.stale
            stale.seen(sensor, stamp)
            stale.check(now)  # type: ignore[arg-type]

        kind, index = route
        if kind == _APPROXIMATE:
            assert self._approx is not None
            for items in self._approx.push(index, stamp, message):
                frames.append(self._frame_from_set(items))
        elif kind == _COLLECTOR:
            assert self._collector is not None
            for collected in self._collector.push(sensor, stamp, message):
                frames.append(self._frame_from_collected(collected))
        else:
            assert self.latest is not None
            self.latest.push(sensor, stamp, message)
            if advanced and self._collector is not None:
                for collected in self._collector.advance(stamp):
                    frames.append(self._frame_from_collected(collected))
        return frames

    def _jump(self, jump: TimelineJump) -> list[Frame]:
        """Start a timeline with the held messages of ``jump``; first end the running one (and
        report the jump once) if there is one."""
        frames: list[Frame] = []
        if jump.from_ns is not None:
            frames = self._end_timeline(DropReason.RESET, restart=True)
            self.resets += 1
            self.last_reset = jump
            if self.on_timeline_reset is not None:
                self.on_timeline_reset(jump)
        for held in jump.messages:
            route = self._routes[held.sensor]
            frames += self._guarded(held.sensor, held.stamp_ns, held.item, route)
        return frames

    def _end_timeline(self, reason: str, *, restart: bool) -> list[Frame]:
        frames: list[Frame] = []
        if self._approx is not None:
            for items in self._approx.flush(reason):
                frames.append(self._frame_from_set(items))
        if self._collector is not None:
            for collected in self._collector.flush(reason):
                frames.append(self._frame_from_collected(collected))
        if self.latest is not None:
            self.latest.flush(reason)
        self._now = None
        self.guard.end(restart=restart)
        self.stale.reset()
        return frames

    def _frame_from_set(self, items: tuple[SensorMessage, ...]) -> Frame:
        stamp = items[self._reference_index].stamp_ns
        messages: dict[str, SensorMessage | None] = {}
        ages: dict[str, int] = {}
        for name, message in zip(self.primary_sensors, items, strict=False):
            messages[name] = message
            ages[name] = stamp - message.stamp_ns
        return self._finish(stamp, messages, {}, ages)

    def _frame_from_collected(self, collected: CollectedFrame) -> Frame:
        stamp = collected.stamp_ns
        messages: dict[str, SensorMessage | None] = {}
        ages: dict[str, int] = {}
        for name, message in collected.items.items():
            messages[name] = message
            if message is not None:
                ages[name] = stamp - message.stamp_ns
        return self._finish(stamp, messages, dict(collected.missing), ages)

    def _finish(
        self,
        stamp: int,
        messages: dict[str, SensorMessage | None],
        missing: dict[str, str],
        ages: dict[str, int],
    ) -> Frame:
        if self.latest is not None:
            for name, sample in self.latest.sample_all(stamp).items():
                messages[name] = sample.item
                if sample.item is None:
                    missing[name] = sample.reason or "missing"
                elif sample.stamp_ns is not None:
                    ages[name] = stamp - sample.stamp_ns
        self._seq += 1
        self.frames_out += 1
        return Frame(
            stamp_ns=stamp, messages=messages, missing=missing, ages_ns=ages, seq=self._seq
        )

    def __repr__(self) -> str:
        return (
            f"Synchronizer(policy={self.policy!r}, sensors={list(self.sensors)}, "
            f"reference={self.reference!r})"
        )
