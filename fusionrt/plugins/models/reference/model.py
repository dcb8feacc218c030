"""The ``reference`` model plugin: geometry, specs, modality mask, shipped network, postprocess.

The run path (ONNX Runtime, TensorRT) needs only numpy and the shipped ONNX files;
``torch_module()`` (PyTorch backend, ``fusionrt export --model reference``) imports torch and
loads the shipped weights (``.npz``) into :mod:`.network`. A model card beside each records
the training config, code version, evaluation numbers and inference cost.

Shipped variants (option ``variant``): ``fused`` (``reference.onnx``, every modality: the
default) and the single-sensor models ``lidar``, ``camera``, ``radar`` (each with CAN, in
``variants/``), trained to the same schedule: the members of a decision-level pipeline.
Option ``onnx`` runs another network of the same family (a checkpoint exported with
``fusionrt train export``); a gated or attention network's extra output ``fusion_weights``
is read from the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.postprocess import decode
from fusionrt.runtime.components import Model
from fusionrt.runtime.engines.base import NetworkSource
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import Detections, TensorSpec
from fusionrt.runtime.options import Option

ARTEFACTS = Path(__file__).resolve().parent
ONNX_PATH = ARTEFACTS / "reference.onnx"
WEIGHTS_PATH = ARTEFACTS / "reference.npz"
MODEL_CARD_PATH = ARTEFACTS / "model_card.json"
SAMPLE_FRAME_PATH = ARTEFACTS / "sample_frame.npz"
VARIANTS_DIR = ARTEFACTS / "variants"
#: Modalities a user may switch off at inference (CAN ego motion always stays on).
MASKABLE = ("camera", "lidar", "radar", "text")
#: The shipped variants: the fused model and one single-sensor model per sensor.
VARIANTS = ("fused", *layout.SENSORS)
#: The default ``score_threshold``: the operating point of the evaluation (the threshold of the
#: highest F1 at 2 m on the held-out drives, ``eval.shipped.operating_point`` of the model
#: card); a test keeps the two equal.
DEFAULT_SCORE_THRESHOLD = 0.38
#: The default ``min_lidar_cells``: a tenth of the cells the sparsest sweeps the model was
#: evaluated on occupy (the sample drive's 16-beam lidar: 543 or more; the simulated 32-beam
#: lidar of the held-out drives: 1 211 or more).
DEFAULT_MIN_LIDAR_CELLS = 50
_DENSITY = 0  # the density channel of lidar_bev (fusionrt.plugins.sensors.bev)


@dataclass(frozen=True)
class Artefacts:
    """The files of one shipped variant: ONNX, weights (.npz) and model card (.json)."""

    onnx: Path
    weights: Path
    card: Path


def artefacts(variant: str) -> Artefacts:
    """Where the files of ``variant`` live (``fused``: the package's ``reference.*``)."""
    if variant not in VARIANTS:
        raise ConfigError(
            f"unknown reference variant {variant!r}; choose from {', '.join(VARIANTS)}",
            key="variant",
        )
    if variant == "fused":
        return Artefacts(ONNX_PATH, WEIGHTS_PATH, MODEL_CARD_PATH)
    return Artefacts(*(VARIANTS_DIR / f"{variant}{ext}" for ext in (".onnx", ".npz", ".json")))


def onnx_output_names(path: Path) -> list[str]:
    """The output names of an ONNX file (read by ONNX Runtime; ``ConfigError`` if unreadable)."""
    import onnxruntime  # noqa: PLC0415  (a core dependency, imported only when asked)

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail / InvalidProtobuf / NoSuchFile types
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ConfigError(f"not a readable ONNX file: {reason}", file=str(path)) from None
    return [o.name for o in session.get_outputs()]


def parse_modalities(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"camera,lidar"`` → the kept modalities (always with ``can``); ``None``: all."""
    if text is None:
        return layout.MODALITIES
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = sorted(set(names) - set(MASKABLE) - {"can"})
    if unknown or not names:
        raise ConfigError(
            f"unknown modalities {unknown}; choose from {', '.join(MASKABLE)}", key="modalities"
        )
    return tuple(m for m in layout.MODALITIES if m in names or m == "can")


class ReferenceModel(Model):
    """BEV fusion of camera, lidar, radar, text/log and CAN with a CenterPoint head.

    Options: ``variant`` (``fused``, ``lidar``, ``camera``, ``radar``: which shipped network;
    a single-sensor variant uses only its sensor and CAN); ``onnx`` (another network of this
    family instead); ``modalities`` (default all) are the modalities the model may use (a
    list, or ``"camera,lidar"``): the others are fed as missing (zeros and a 0 in
    ``modality_mask``) whatever the sensors delivered — the masked ablation of
    ``fusionrt eval --modalities``; ``top_k`` (100) detections at most per frame, of score at
    least ``score_threshold`` (:data:`DEFAULT_SCORE_THRESHOLD`, the evaluation's operating
    point); ``min_lidar_cells``: a lidar sweep occupying fewer BEV cells is fed as missing (a
    blocked or failed lidar; the network answers a few stray points with confident boxes).
    """

    name: ClassVar[str] = "reference"
    #: Trained on drives whose ego is on the road: the BEV z range (-0.5, 3.5) m, the lift
    #: heights and the regressed box heights are heights above the road.
    road_level_ego: ClassVar[bool] = True
    option_specs: ClassVar[Mapping[str, Option]] = {
        "variant": Option("fused", str, choices=VARIANTS),
        "onnx": Option(None, str, nullable=True),
        "modalities": Option(None, (str, list), item=str, nullable=True),
        "top_k": Option(100, int, minimum=1),
        "score_threshold": Option(DEFAULT_SCORE_THRESHOLD, float, minimum=0, maximum=1),
        "min_lidar_cells": Option(DEFAULT_MIN_LIDAR_CELLS, int, minimum=0),
    }

    def __init__(self, modalities: Iterable[str] | str | None = None, **options: Any) -> None:
        super().__init__(modalities=modalities, **options)
        self.variant: str = self.options["variant"]
        self.artefacts = artefacts(self.variant)
        if self.options["onnx"] is not None:
            self.artefacts = Artefacts(Path(self.options["onnx"]), Path(), Path())
        self.modalities = parse_modalities(self.options["modalities"])
        if self.variant != "fused":  # a single-sensor network never saw the other sensors
            self.modalities = tuple(m for m in self.modalities if m in (self.variant, "can"))
        self.top_k: int = self.options["top_k"]
        self.score_threshold: float = self.options["score_threshold"]
        self.min_lidar_cells: int = self.options["min_lidar_cells"]
        self._inputs = layout.input_specs()
        self._zeros = {spec.name: spec.zeros() for spec in self._inputs}
        self._outputs: list[TensorSpec] | None = None

    @property
    def geometry(self) -> ModelGeometry:
        """128 × 128 BEV cells of 0.5 m, one 128 × 224 camera, lift heights 0.3/0.9/1.5 m."""
        return layout.GEOMETRY

    def input_specs(self) -> list[TensorSpec]:
        """Camera, lift table, lidar and radar rasters, text, CAN and the modality mask."""
        return list(self._inputs)

    def output_specs(self) -> list[TensorSpec]:
        """``heatmap`` (3×64×64 sigmoid scores) and ``regression`` (10×64×64); with an
        ``onnx`` network that has it, ``fusion_weights`` (3×64×64)."""
        if self._outputs is None:
            weights = False
            if self.options["onnx"] is not None:
                weights = layout.FUSION_WEIGHTS in onnx_output_names(self.artefacts.onnx)
            self._outputs = layout.output_specs(fusion_weights=weights)
        return list(self._outputs)

    def make_feed(
        self, tensors: Mapping[str, np.ndarray], present: Mapping[str, bool]
    ) -> dict[str, np.ndarray]:
        """The declared inputs, zeros for absent or masked modalities, and ``modality_mask``;
        a lidar raster with fewer than ``min_lidar_cells`` occupied cells counts as absent."""
        on = {m: bool(present.get(m, False)) and m in self.modalities for m in layout.MODALITIES}
        lidar = tensors.get(layout.LIDAR_BEV)
        if on["lidar"] and lidar is not None:
            on["lidar"] = int(np.count_nonzero(lidar[_DENSITY])) >= self.min_lidar_cells
        mask = np.array([on[m] for m in layout.MODALITIES], np.float32)
        feed: dict[str, np.ndarray] = {}
        for spec in self._inputs[:-1]:
            use = spec.sensor is None or on[spec.sensor]
            feed[spec.name] = (
                tensors[spec.name] if use and spec.name in tensors else self._zeros[spec.name]
            )
        feed[layout.MODALITY_MASK] = mask
        return feed

    def contributes(self, feed: Mapping[str, np.ndarray]) -> bool:
        """Whether one of the model's sensors (camera, lidar, radar) is on in ``feed``: text
        and CAN alone give no boxes worth fusing."""
        mask = feed[layout.MODALITY_MASK]
        return any(mask[layout.MODALITIES.index(s)] > 0 for s in layout.SENSORS)

    def postprocess(self, outputs: Mapping[str, np.ndarray], stamp_ns: int) -> Detections:
        """Top-k heatmap peaks (3×3 max-pool NMS) decoded to boxes in the ego frame."""
        return decode(
            outputs[layout.HEATMAP],
            outputs[layout.REGRESSION],
            stamp_ns,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
        )

    def explain(
        self,
        outputs: Mapping[str, np.ndarray],
        *,
        infer: Any = None,
        tensors: Mapping[str, np.ndarray] | None = None,
        present: Mapping[str, bool] | None = None,
    ) -> dict[str, dict[str, float]]:
        """How much each modality contributed to this frame (:mod:`.explain`):
        ``fusion_weights`` when the network outputs them, and ``drop_one`` (one extra
        inference per present modality through ``infer``) when ``infer``, the frame's sensor
        ``tensors`` and ``present`` are given."""
        from fusionrt.plugins.models.reference import explain  # noqa: PLC0415  (imports this)

        out = {}
        weights = explain.fusion_weight_contributions(outputs)
        if weights:
            out["fusion_weights"] = weights
        if infer is not None and tensors is not None and present is not None:
            out["drop_one"] = explain.drop_one_attribution(
                infer, self, tensors, present, outputs=outputs
            )
        return out

    # -- the network --------------------------------------------------------------------

    def network_source(self) -> NetworkSource:
        """The variant's ONNX file and, for a shipped variant, the PyTorch module with its
        weights (an ``onnx`` network has no weights file: ONNX backends only)."""
        if self.options["onnx"] is None and not self.artefacts.onnx.is_file():
            raise ConfigError(
                f"the {self.variant} variant of the reference model is not installed "
                f"(fusionrt train ship --variant {self.variant} writes it)",
                key="variant",
                file=str(self.artefacts.onnx),
            )
        return NetworkSource(
            tuple(self.input_specs()),
            tuple(self.output_specs()),
            self.artefacts.onnx,
            torch_module=self.torch_module if self.options["onnx"] is None else None,
        )

    def torch_module(self) -> Any:
        """The PyTorch network (unbatched inputs) with the shipped weights (imports torch)."""
        from fusionrt.plugins.models.reference.weights import load_export_network  # noqa: PLC0415

        return load_export_network(self.artefacts.weights)

    def sample_feeds(self) -> list[dict[str, np.ndarray]]:
        """Real frames of a held-out simulated drive (shipped), fused and with sensors masked."""
        feeds = []
        with np.load(SAMPLE_FRAME_PATH) as z:
            tensors = {name: z[name] for name in z.files}
        for kept in (layout.MODALITIES, ("lidar", "can"), ("camera", "radar", "text", "can")):
            present = {m: m in kept for m in layout.MODALITIES}
            feeds.append(self.make_feed(tensors, present))
        return feeds

    def model_card(self) -> dict[str, Any]:
        """The variant's model card (training config, code version, eval numbers, cost)."""
        return dict(json.loads(self.artefacts.card.read_text()))


@hookimpl
def fusionrt_models() -> list[type]:
    """The built-in reference model."""
    return [ReferenceModel]
