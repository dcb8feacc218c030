"""The camera sensor: recorded images → the model's batched image tensor and BEV lift table.

**decode** (:mod:`.image_codec`): ``sensor_msgs/msg/Image`` (rgb8 as a zero-copy view; bgr8,
rgba8, bgra8, mono8 and 8-bit Bayer converted), ``sensor_msgs/msg/CompressedImage`` and image
files (JPEG/PNG, msgtype ``fusionrt/image_file``). The payload is always **RGB uint8 H×W×3**;
``meta["encoding"]`` keeps the recorded encoding and, for JPEG and PNG, ``meta["compressed"]``
the recorded file's bytes (outputs pass them on instead of encoding the image again). The stamp
is the message header's (option ``stamp_from="record"`` uses the record's), on the sensor's own
clock: the synchroniser applies the rig's ``time_offset_ns``.

**preprocess**: for each camera of the batch, one ``cv2.remap`` from the recorded image to the
model's ``image_size`` that undistorts with the rig's cached maps (skipped when
``geometry.images_rectified``), crops and resizes (option ``resize_mode``: ``crop`` keeps the
aspect ratio, ``stretch`` does not; ``crop_anchor``: ``center`` or ``bottom``); images much
larger than the output are first halved with ``INTER_AREA`` (anti-aliasing). Pixels are then
normalised per channel, ``(rgb − mean) / std`` with ImageNet's ``mean = (123.675, 116.28,
103.53)`` and ``std = (58.395, 57.12, 57.375)`` on 0…255 values (options ``mean``, ``std``),
into float32 CHW.

Outputs (``N = geometry.num_cameras``, ``H × W = geometry.image_size``, ``Z`` lift heights,
``rows × cols`` the BEV grid):

* ``camera_images`` ``(N, 3, H, W)`` float32 — zeros in slots whose camera is absent;
* ``camera_lift_uv`` ``(N, Z, rows, cols, 2)`` float32 — where each BEV cell centre at each
  lift height is seen in each output image, in ``grid_sample`` coordinates
  (``align_corners=False``), ``−2`` where not seen (see :mod:`.lift`);
* ``camera_lift_valid`` ``(N, Z, rows, cols)`` float32 — 1 where seen; zero for the whole slot
  of an absent camera, so that the model lifts nothing from it.

The lift table depends only on the rig, the geometry and the options: it is computed once per
context (``context.cache``) and returned as a read-only array.

**Batching.** One ``CameraSensor`` feeds all ``N`` slots. The slot order is the option
``cameras`` (rig names) if given, else the rig cameras among ``context.sensor_names`` (in that
order), else the sensor's own ``instance``. :meth:`CameraSensor.preprocess_batch` takes the
frame's camera messages (a mapping ``camera name → message or None``, or a sequence in slot
order) and fills every slot; :meth:`CameraSensor.preprocess` fills the slot of one message
(``message.sensor``) and leaves the others empty.

An image whose size disagrees with the rig camera's ``width × height`` (allowing for the
option ``jpeg_reduction``) raises :class:`~fusionrt.DecodeError` naming the sensor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from fusionrt.plugins.sensors.image_codec import (
    COMPRESSED_IMAGE_MSGTYPE,
    IMAGE_FILE_MSGTYPE,
    IMAGE_MSGTYPE,
    decode_image_record,
    encode_compressed_image_msg,
    encode_image_file,
    encode_image_msg,
)
from fusionrt.plugins.sensors.lift import (
    CROP_ANCHORS,
    INVALID_UV,
    RESIZE_MODES,
    ImageResizePlan,
    camera_lift_table,
    plan_resize,
)
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor

if TYPE_CHECKING:
    from fusionrt.calibration.rig import Rig

#: ImageNet statistics of RGB values in 0…255 (the default normalisation).
IMAGENET_MEAN_RGB: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB: tuple[float, float, float] = (58.395, 57.12, 57.375)

IMAGES = "camera_images"
LIFT_UV = "camera_lift_uv"
LIFT_VALID = "camera_lift_valid"


@dataclass(eq=False)
class _Slot:
    """One batch slot: its rig camera and how its images become the model's input image."""

    camera: str | None
    plan: ImageResizePlan | None = None
    k_out: np.ndarray | None = None
    undistort: bool = False
    maps: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )


@dataclass(eq=False)
class _BatchState:
    """What a context's rig and geometry fix for this sensor: slots, lift table, remap maps."""

    rig: Rig | None
    geometry_key: tuple[Any, ...]
    names: list[str]
    slots: list[_Slot]
    lift_uv: np.ndarray
    lift_valid: np.ndarray


def _geometry_key(geometry: ModelGeometry) -> tuple[Any, ...]:
    return (
        geometry.bev,
        tuple(geometry.image_size),
        int(geometry.num_cameras),
        tuple(float(h) for h in geometry.lift_heights),
        bool(geometry.images_rectified),
    )


class CameraSensor(Sensor):
    """Camera images (ROS Image / CompressedImage, JPEG/PNG files) → batched image tensor + lift.

    Options (all optional): ``cameras`` (rig names in batch-slot order), ``jpeg_reduction``
    (1, 2, 4 or 8: decode JPEGs at that fraction of their size; fast, use it when the model's
    image is at most half the recorded size), ``resize_mode`` (``crop``/``stretch``),
    ``crop_anchor`` (``center``/``bottom``), ``mean``/``std`` (RGB, 0…255), ``antialias``
    (halve large images with INTER_AREA before the remap), ``lift_min_depth_m`` (nearest
    valid lift depth), ``stamp_from`` (``header``/``record``).
    """

    name = "camera"
    modality = Modality.CAMERA
    nonfinite = NonFinitePolicy.NOT_APPLICABLE
    option_specs: ClassVar[Mapping[str, Option]] = {
        "cameras": Option(None, list, item=str, nullable=True),
        "jpeg_reduction": Option(1, int, choices=(1, 2, 4, 8)),
        "resize_mode": Option("crop", str, choices=RESIZE_MODES),
        "crop_anchor": Option("center", str, choices=CROP_ANCHORS),
        "mean": Option(IMAGENET_MEAN_RGB, list, item=float, length=3),
        "std": Option(IMAGENET_STD_RGB, list, item=float, length=3, exclusive_minimum=0),
        "antialias": Option(True, bool),
        "lift_min_depth_m": Option(0.1, float, exclusive_minimum=0),
        "stamp_from": Option("header", str, choices=("header", "record")),
    }

    def __init__(self, instance: str | None = None, topic: str = "", **options: Any) -> None:
        super().__init__(instance, topic, **options)
        opts = self.options
        mean = np.asarray(opts["mean"], dtype=np.float64)
        std = np.asarray(opts["std"], dtype=np.float64)
        self._scale = (1.0 / std).astype(np.float32)
        self._shift = (-mean / std).astype(np.float32)
        self._cache_key = (
            f"fusionrt.camera[{self.instance}|{opts['cameras']}|{opts['resize_mode']}|"
            f"{opts['crop_anchor']}|{float(opts['lift_min_depth_m'])}]"
        )

    # -- decode ---------------------------------------------------------------------------

    def decode(self, raw: RawRecord) -> SensorMessage:
        """Recorded image bytes → RGB uint8 H×W×3 (a view of the bytes for rgb8 Images)."""
        where = {
            "sensor": self.instance,
            "topic": raw.topic,
            "path": raw.path,
            "record_offset": raw.offset,
        }
        image = decode_image_record(
            raw.data, raw.msgtype, reduction=int(self.options["jpeg_reduction"]), **where
        )
        stamp = raw.stamp_ns
        if self.options["stamp_from"] == "header" and image.stamp_ns is not None:
            stamp = image.stamp_ns
        height, width = image.pixels.shape[:2]
        meta = {
            "encoding": image.encoding,
            "msgtype": raw.msgtype,
            "width": int(width),
            "height": int(height),
            "reduction": int(image.reduction),
            "is_view": bool(image.is_view),
            "path": raw.path,
            "record_offset": raw.offset,
        }
        if image.compressed is not None:
            meta["compressed"] = image.compressed
        return SensorMessage(
            sensor=self.instance,
            stamp_ns=int(stamp),
            payload=image.pixels,
            frame_id=image.frame_id or self.instance,
            topic=raw.topic or self.topic,
            meta=meta,
        )

    # -- geometry of the batch ------------------------------------------------------------

    def camera_names(self, context: PreprocessContext) -> list[str]:
        """Rig names of the batch slots, in order (see the module docstring)."""
        explicit = self.options["cameras"]
        if explicit:
            names = [str(n) for n in explicit]
        else:
            rig = context.rig
            names = [
                n
                for n in context.sensor_names
                if rig is not None and n in rig.sensors and rig.sensors[n].camera is not None
            ] or [self.instance]
        if len(names) > context.geometry.num_cameras or len(set(names)) != len(names):
            raise ConfigError(
                f"camera batch {names} does not fit the model's num_cameras = "
                f"{context.geometry.num_cameras} (or names a camera twice)",
                sensor=self.instance,
                key="cameras",
            )
        return names

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """``camera_images``, ``camera_lift_uv`` and ``camera_lift_valid`` for this geometry."""
        geometry = context.geometry
        n = int(geometry.num_cameras)
        h, w = (int(v) for v in geometry.image_size)
        rows, cols = geometry.bev.shape
        z = len(geometry.lift_heights)
        return [
            TensorSpec(IMAGES, (n, 3, h, w), "float32", self.name),
            TensorSpec(LIFT_UV, (n, z, rows, cols, 2), "float32", self.name),
            TensorSpec(LIFT_VALID, (n, z, rows, cols), "float32", self.name),
        ]

    def _state(self, context: PreprocessContext) -> _BatchState:
        """The slots and lift table of this context, computed once and kept in its cache."""
        key = _geometry_key(context.geometry)
        state = context.cache.get(self._cache_key)
        if (
            isinstance(state, _BatchState)
            and state.rig is context.rig
            and state.geometry_key == key
            and state.names == self.camera_names(context)
        ):
            return state
        state = self._build_state(context, key)
        context.cache[self._cache_key] = state
        return state

    def _build_state(self, context: PreprocessContext, key: tuple[Any, ...]) -> _BatchState:
        geometry, rig = context.geometry, context.rig
        names = self.camera_names(context)
        out_hw = (int(geometry.image_size[0]), int(geometry.image_size[1]))
        slots: list[_Slot] = []
        for index in range(geometry.num_cameras):
            name = names[index] if index < len(names) else None
            slot = _Slot(camera=name)
            if rig is not None and name is not None:  # CalibrationError if not a rig camera
                model = rig.camera(name)
                slot.plan = plan_resize(
                    model.size, out_hw, self.options["resize_mode"], self.options["crop_anchor"]
                )
                slot.k_out = slot.plan.output_intrinsics(model.K)
                slot.k_out.setflags(write=False)
                slot.undistort = model.is_distorted and not geometry.images_rectified
            slots.append(slot)
        rows, cols = geometry.bev.shape
        lift_shape = (geometry.num_cameras, len(geometry.lift_heights), rows, cols)
        if rig is not None and any(s.k_out is not None for s in slots):
            uv, valid = camera_lift_table(
                rig,
                [s.camera if s.k_out is not None else None for s in slots],
                geometry.bev,
                geometry.lift_heights,
                output_intrinsics=[s.k_out for s in slots],
                output_hw=out_hw,
                min_depth_m=float(self.options["lift_min_depth_m"]),
            )
        else:
            uv = np.zeros((*lift_shape, 2), np.float32)
            valid = np.zeros(lift_shape, np.float32)
        uv.setflags(write=False)
        valid.setflags(write=False)
        return _BatchState(rig, key, names, slots, uv, valid)

    def output_intrinsics(self, context: PreprocessContext) -> np.ndarray:
        """``(N, 3, 3)`` pinhole intrinsics of each slot's model-input image (NaN if unknown)."""
        state = self._state(context)
        out = np.full((len(state.slots), 3, 3), np.nan)
        for i, slot in enumerate(state.slots):
            if slot.k_out is not None:
                out[i] = slot.k_out
        return out

    def lift_table(self, context: PreprocessContext) -> tuple[np.ndarray, np.ndarray]:
        """The cached ``(camera_lift_uv, camera_lift_valid)`` of this context (read-only)."""
        state = self._state(context)
        return state.lift_uv, state.lift_valid

    # -- preprocess -----------------------------------------------------------------------

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """One camera message into its batch slot (others empty); ``None`` → all zeros."""
        if message is None:
            return {spec.name: spec.zeros() for spec in self.tensor_specs(context)}
        names = self.camera_names(context)
        name = message.sensor if message.sensor in names else self.instance
        if name not in names:
            raise ConfigError(
                f"camera message of {message.sensor!r} has no slot in the batch {names}",
                sensor=self.instance,
                key="cameras",
            )
        return self.preprocess_batch({name: message}, context)

    def preprocess_batch(
        self,
        messages: Mapping[str, SensorMessage | None] | Sequence[SensorMessage | None],
        context: PreprocessContext,
    ) -> dict[str, np.ndarray]:
        """All camera messages of a frame → one batch.

        ``messages`` maps rig camera names to messages (or ``None``), or lists them in slot
        order (:meth:`camera_names`). Absent cameras get zero images and zero lift validity.
        """
        state = self._state(context)
        geometry = context.geometry
        h, w = (int(v) for v in geometry.image_size)
        by_slot: list[SensorMessage | None] = [None] * len(state.slots)
        if isinstance(messages, Mapping):
            for camera, message in messages.items():
                if camera not in state.names:
                    raise ConfigError(
                        f"camera {camera!r} has no slot in the batch {state.names}",
                        sensor=self.instance,
                        key="cameras",
                    )
                by_slot[state.names.index(camera)] = message
        else:
            if len(messages) > len(state.slots):
                raise ConfigError(
                    f"{len(messages)} camera messages for {len(state.slots)} slots",
                    sensor=self.instance,
                    key="cameras",
                )
            by_slot[: len(messages)] = list(messages)
        images = np.zeros((len(state.slots), 3, h, w), np.float32)
        present = np.zeros(len(state.slots), np.float32)
        for index, message in enumerate(by_slot):
            if message is None:
                continue
            self._fill_slot(images[index], message, state.slots[index], context)
            present[index] = 1.0
        if np.all(present == 1.0):
            uv, valid = state.lift_uv, state.lift_valid
        elif not np.any(present):
            uv, valid = np.zeros_like(state.lift_uv), np.zeros_like(state.lift_valid)
        else:  # absent slots: nothing valid, coordinates outside the image
            absent = present == 0.0
            uv, valid = state.lift_uv.copy(), state.lift_valid.copy()
            uv[absent] = INVALID_UV
            valid[absent] = 0.0
        return {IMAGES: images, LIFT_UV: uv, LIFT_VALID: valid}

    def _fill_slot(
        self, out: np.ndarray, message: SensorMessage, slot: _Slot, context: PreprocessContext
    ) -> None:
        """Undistort + crop + resize + normalise one RGB image into ``out`` (3×H×W float32)."""
        pixels = message.payload
        where = {
            "sensor": message.sensor or self.instance,
            "topic": message.topic,
            "path": message.meta.get("path"),
            "record_offset": message.meta.get("record_offset"),
        }
        if (
            not isinstance(pixels, np.ndarray)
            or pixels.ndim != 3
            or pixels.shape[2] != 3
            or pixels.dtype != np.uint8
            or pixels.shape[0] == 0
            or pixels.shape[1] == 0
        ):
            shape = getattr(pixels, "shape", None)
            raise DecodeError(f"camera payload must be RGB uint8 H×W×3, got {shape}", **where)
        img_h, img_w = pixels.shape[:2]
        _, out_h, out_w = out.shape
        if slot.plan is not None:
            rig_w, rig_h = slot.plan.source_size
            reduction = int(message.meta.get("reduction", 1))
            expected = (math.ceil(rig_w / reduction), math.ceil(rig_h / reduction))
            if (img_w, img_h) != expected:
                raise DecodeError(
                    f"image is {img_w}×{img_h} but the rig says camera {slot.camera!r} is "
                    f"{rig_w}×{rig_h}"
                    + (f" (÷{reduction} = {expected[0]}×{expected[1]})" if reduction > 1 else ""),
                    **where,
                )
            plan = slot.plan
        else:  # no rig: resize/crop the image as it is, no undistortion
            plan = plan_resize(
                (img_w, img_h),
                (out_h, out_w),
                self.options["resize_mode"],
                self.options["crop_anchor"],
            )
        rig_w, rig_h = plan.source_size
        sx, sy = plan.scale
        image = pixels
        if self.options["antialias"]:
            # Halve with INTER_AREA while the remap would still shrink by 2× or more.
            while (
                sx * rig_w / image.shape[1] <= 0.5
                and sy * rig_h / image.shape[0] <= 0.5
                and min(image.shape[:2]) >= 4
            ):
                image = cv2.resize(
                    image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA
                )
        map1, map2 = self._maps(
            slot, plan, (image.shape[1], image.shape[0]), (out_w, out_h), context.rig
        )
        resized = cv2.remap(
            image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        for channel, plane in enumerate(cv2.split(resized)):
            np.multiply(plane, self._scale[channel], out=out[channel], casting="unsafe")
            out[channel] += self._shift[channel]

    def _maps(
        self,
        slot: _Slot,
        plan: ImageResizePlan,
        image_size: tuple[int, int],
        output_size: tuple[int, int],
        rig: Rig | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point remap maps from an image of ``image_size`` to the output (cached)."""
        img_w, img_h = image_size
        out_w, out_h = output_size
        key = (*plan.source_size, img_w, img_h)
        cached = slot.maps.get(key)
        if cached is not None:
            return cached
        if slot.undistort and rig is not None and slot.camera is not None:
            map_x, map_y = rig.undistort_maps(slot.camera, new_K=slot.k_out, size=(out_w, out_h))
        else:
            u, v = np.meshgrid(
                np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64)
            )
            map_x, map_y = plan.output_to_source(u, v)
        # Source pixels of the rig's full-size image → pixels of this (reduced/halved) image.
        ax, ay = img_w / plan.source_size[0], img_h / plan.source_size[1]
        map_x = ((np.asarray(map_x, np.float64) + 0.5) * ax - 0.5).astype(np.float32)
        map_y = ((np.asarray(map_y, np.float64) + 0.5) * ay - 0.5).astype(np.float32)
        maps = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        slot.maps[key] = maps
        return maps

    # -- samples --------------------------------------------------------------------------

    def sample_records(self) -> list[RawRecord]:
        """Synthetic road scenes (drawn with OpenCV) in every container the camera reads."""
        return camera_sample_records(self.topic or "/camera/image")

    def default_context(self) -> PreprocessContext:
        """A small geometry and a one-camera rig matching :meth:`sample_records`."""
        from fusionrt.calibration.rig import Rig  # noqa: PLC0415

        rig = Rig.from_dict(camera_sample_rig_dict(self.instance))
        geometry = ModelGeometry(
            bev=BevGrid(x_range=(0.0, 40.0), y_range=(-20.0, 20.0), resolution=1.0),
            image_size=(48, 80),
            num_cameras=1,
            lift_heights=(0.0, 1.0),
        )
        return PreprocessContext(geometry=geometry, rig=rig, sensor_names=(self.instance,))


# -- sample data ----------------------------------------------------------------------------

SAMPLE_SIZE = (160, 96)  # (width, height) of the synthetic sample images
SAMPLE_STAMP_NS = 1_700_000_000_000_000_000


def camera_sample_rig_dict(camera: str = "camera") -> dict[str, Any]:
    """A rig with one forward camera (1.5 m up, mild barrel distortion) for the samples."""
    width, height = SAMPLE_SIZE
    return {
        "frame": "ego",
        "sensors": {
            camera: {
                "kind": "camera",
                "model": "plumb_bob",
                "width": width,
                "height": height,
                "K": [[100.0, 0.0, 79.5], [0.0, 100.0, 47.5], [0.0, 0.0, 1.0]],
                "distortion": [-0.05, 0.01, 0.0, 0.0, 0.0],
                "extrinsics": {
                    "translation": [1.5, 0.0, 1.5],
                    # camera (x right, y down, z forward) -> ego (x forward, y left, z up)
                    "rotation": {"matrix": [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]},
                },
            }
        },
    }


def synthetic_road_image(width: int = SAMPLE_SIZE[0], height: int = SAMPLE_SIZE[1]) -> np.ndarray:
    """A deterministic RGB uint8 road scene: sky, road, lane marks and a red car."""
    image = np.zeros((height, width, 3), np.uint8)
    horizon = height // 2
    sky = np.linspace(200, 120, horizon, dtype=np.float64)
    image[:horizon] = np.stack([sky * 0.6, sky * 0.8, sky], axis=-1)[:, None, :].astype(np.uint8)
    image[horizon:] = (70, 110, 60)
    road = np.array(
        [[width * 0.45, horizon], [width * 0.55, horizon], [width, height], [0, height]], np.int32
    )
    cv2.fillPoly(image, [road], (90, 90, 95))
    for y in range(horizon + 4, height, 10):
        cv2.line(image, (width // 2, y), (width // 2, min(height - 1, y + 4)), (240, 240, 240), 1)
    cv2.rectangle(
        image, (width // 2 - 14, horizon + 4), (width // 2 + 10, horizon + 20), (200, 30, 30), -1
    )
    cv2.putText(image, "fusionrt", (4, 12), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255), 1)
    return image


def camera_sample_records(topic: str = "/camera/image") -> list[RawRecord]:
    """Deterministic records: CompressedImage JPEG, Image rgb8/bgr8 (padded)/bayer, PNG file."""
    rgb = synthetic_road_image()
    height, width = rgb.shape[:2]
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    bayer = np.zeros((height, width), np.uint8)  # RGGB mosaic of the scene
    bayer[0::2, 0::2] = rgb[0::2, 0::2, 0]
    bayer[0::2, 1::2] = rgb[0::2, 1::2, 1]
    bayer[1::2, 0::2] = rgb[1::2, 0::2, 1]
    bayer[1::2, 1::2] = rgb[1::2, 1::2, 2]
    jpeg = encode_image_file(rgb, "jpeg", quality=85)
    png = encode_image_file(rgb, "png")
    stamp = SAMPLE_STAMP_NS
    frame = "camera_optical"
    return [
        RawRecord(
            topic,
            stamp,
            encode_compressed_image_msg(jpeg, "jpeg", stamp_ns=stamp, frame_id=frame),
            COMPRESSED_IMAGE_MSGTYPE,
        ),
        RawRecord(
            topic,
            stamp + 1,
            encode_image_msg(rgb, "rgb8", stamp_ns=stamp + 1, frame_id=frame),
            IMAGE_MSGTYPE,
        ),
        RawRecord(
            topic,
            stamp + 2,
            encode_image_msg(bgr, "bgr8", stamp_ns=stamp + 2, frame_id=frame, step=width * 3 + 16),
            IMAGE_MSGTYPE,
        ),
        RawRecord(
            topic,
            stamp + 3,
            encode_image_msg(bayer, "bayer_rggb8", stamp_ns=stamp + 3, frame_id=frame),
            IMAGE_MSGTYPE,
        ),
        RawRecord(topic, stamp + 4, png, IMAGE_FILE_MSGTYPE),
    ]


@hookimpl
def fusionrt_sensors() -> list[type[Sensor]]:
    """The built-in camera sensor."""
    return [CameraSensor]


__all__ = [
    "IMAGENET_MEAN_RGB",
    "IMAGENET_STD_RGB",
    "CameraSensor",
    "camera_sample_records",
    "camera_sample_rig_dict",
    "synthetic_road_image",
]
