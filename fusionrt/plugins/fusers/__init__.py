"""Built-in decision-level fusers: several models' detections of a frame → one set.

:mod:`.boxes` holds the algorithms as pure functions (:func:`~.boxes.weighted_box_fusion`,
:func:`~.boxes.probabilistic_fusion`) over :class:`~fusionrt.runtime.messages.Detections`;
:mod:`.calibration` measures the probabilistic fuser's per-model calibration on drives with
ground truth.
"""
