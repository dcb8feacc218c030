"""Boxes as image segments (what the video draws and the Foxglove annotations carry): edges
clipped to the image, never a corner that a lens's distortion folds back into it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sinks.projection import box_edges_in_image, clip_segments

coordinate = st.floats(-3000, 3000, allow_nan=False)
segment = st.tuples(coordinate, coordinate, coordinate, coordinate)


@settings(max_examples=300, deadline=None)
@given(st.lists(segment, min_size=1, max_size=20), st.integers(1, 2000), st.integers(1, 2000))
def test_clipped_segments_are_the_parts_of_each_segment_inside_the_image(raw, width, height):
    segments = np.array(raw, np.float64).reshape(-1, 2, 2)
    clipped, kept = clip_segments(segments, width, height)
    low, high = np.array([-0.5, -0.5]), np.array([width - 0.5, height - 0.5])
    assert ((clipped >= low) & (clipped <= high)).all()
    t = np.linspace(0.0, 1.0, 401)[:, None]
    for original, is_kept in zip(segments, kept, strict=True):
        samples = original[0] + t * (original[1] - original[0])
        inside = ((samples > low + 1e-6) & (samples < high - 1e-6)).all(axis=1)
        if not is_kept:
            assert not inside.any()  # dropped only when no part of it is in the image
    for original, part in zip(segments[kept], clipped, strict=True):
        direction = original[1] - original[0]
        length = np.linalg.norm(direction)
        for end in part:  # on the original segment
            if length > 1e-9:
                along = np.dot(end - original[0], direction) / length**2
                assert -1e-9 <= along <= 1 + 1e-9
                offset = end - original[0]
                across = (direction[0] * offset[1] - direction[1] * offset[0]) / length
                assert abs(across) < 1e-6 * max(1.0, length)
        if ((original >= low) & (original <= high)).all():
            np.testing.assert_allclose(part, original, atol=1e-9)  # inside: unchanged


def _rig(distortion: list[float]) -> Rig:
    """A 640×480 camera whose frame is the rig frame (x right, y down, z forward)."""
    camera = {
        "kind": "camera",
        "model": "plumb_bob",
        "width": 640,
        "height": 480,
        "K": [[300.0, 0.0, 320.0], [0.0, 300.0, 240.0], [0.0, 0.0, 1.0]],
        "distortion": distortion,
        "extrinsics": {"translation": [0, 0, 0], "rotation": {"quaternion_wxyz": [1, 0, 0, 0]}},
    }
    return Rig.from_dict({"frame": "ego", "sensors": {"cam": camera}})


def test_a_box_far_outside_the_view_is_not_folded_into_the_image_by_the_distortion():
    # r_d = r (1 - 0.3 r²) turns back at r = 1.05: a point at r = 1.6 (58° off axis) would
    # land at u = 431, inside the image, were it projected
    rig = _rig([-0.3, 0.0, 0.0, 0.0, 0.0])
    off_axis = np.array([[16.0, 0.0, 10.0, 0.4, 0.4, 0.4, 0.0]])
    uv, _, _ = rig.camera("cam").project(np.array([[16.0, 0.0, 10.0]]))
    assert 0 <= uv[0, 0] < 640  # the fold the projection would draw
    segments, _ = box_edges_in_image(off_axis, rig, "cam")
    assert len(segments) == 0
    ahead = np.array([[0.0, 0.0, 10.0, 2.0, 2.0, 2.0, 0.3]])
    segments, boxes = box_edges_in_image(ahead, rig, "cam")
    assert len(segments) == 12 and (boxes == 0).all()  # a box in view: all 12 edges


def test_an_edge_that_leaves_the_image_ends_at_its_border():
    rig = _rig([0.0] * 5)
    # a long box crossing the right border: its far corners project beyond u = 640
    crossing = np.array([[8.0, 0.0, 10.0, 10.0, 1.0, 1.0, 0.0]])
    segments, _ = box_edges_in_image(crossing, rig, "cam")
    assert len(segments) > 0 and np.isclose(segments[..., 0].max(), 639.5)
    behind = np.array([[0.0, 0.0, -5.0, 1.0, 1.0, 1.0, 0.0]])
    assert len(box_edges_in_image(behind, rig, "cam")[0]) == 0
