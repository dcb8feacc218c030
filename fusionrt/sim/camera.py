"""The front camera, rendered with OpenCV from the rig's calibration.

Rendering happens in two steps. First an undistorted *pinhole canvas* is drawn with the rig's
focal length, large enough to cover the lens's whole (distorted) field of view: sky and terrain,
the road as polygons on the ground plane (asphalt, bike lanes, parking strips, sidewalks, lane
markings), then every object, far to near (the painter's algorithm: objects sorted by distance,
each object's parts in a fixed bottom-up order, back faces culled), as shaded boxes built of
class-specific parts (a car is a body, wheels and a glass cabin; a pedestrian legs, torso and
head; a cyclist a bike and its rider) with decals (windows, lights, plates, stripes). Then the
canvas is warped through the rig's lens distortion (``cv2.remap`` with maps built from the
camera model, so ``rig.project`` of a 3-D point lands on the pixel where it is drawn), the
condition's effects are applied (haze and fog by depth, night lighting with headlights and
emissive car lights, rain streaks), vignetting and sensor noise are added, and the result is
JPEG-compressed.

Alongside the image the renderer produces an instance mask (the track id of the actor drawn at
each pixel, 0 elsewhere) for tests and debugging; it is not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusionrt.calibration import Rig
from fusionrt.sim.conditions import Condition
from fusionrt.sim.world import (
    BARRIER,
    BIKE_LANE,
    BUILDING,
    CAR,
    CARRIAGEWAY_HALF,
    CONE,
    CYCLIST,
    LANE_WIDTH,
    PARKING,
    PEDESTRIAN,
    POLE,
    SIDEWALK,
    Boxes,
    World,
)

__all__ = ["CameraRenderer", "RenderedFrame", "encode_jpeg"]

NEAR_M = 0.3  # near clipping plane (camera z, metres)
SHIFT = 4  # sub-pixel bits for cv2 polygon filling
_ONE = 1 << SHIFT

# Colours are BGR.
SKY_TOP = np.array([215.0, 160.0, 110.0])
SKY_HORIZON = np.array([240.0, 215.0, 190.0])
TERRAIN = (95, 110, 105)
ASPHALT = (86, 87, 90)
PARKING_ASPHALT = (98, 98, 102)
BIKE_LANE_COLOUR = (78, 82, 150)
SIDEWALK_COLOUR = (160, 163, 165)
MARKING = (225, 228, 230)
CAR_PAINTS = (
    (235, 235, 235), (190, 190, 186), (35, 35, 38), (85, 85, 90), (40, 40, 185),
    (150, 75, 30), (95, 45, 25), (60, 110, 45), (150, 185, 200), (40, 185, 220),
)  # fmt: skip
SHIRTS = (
    (40, 40, 200), (180, 90, 30), (60, 150, 60), (40, 200, 230), (230, 230, 230),
    (30, 30, 30), (30, 120, 240), (140, 50, 120),
)  # fmt: skip
TROUSERS = ((90, 50, 30), (30, 30, 30), (110, 110, 110), (110, 150, 170))
SKIN = ((130, 160, 210), (95, 125, 175), (60, 85, 125), (150, 180, 225))
JERSEYS = ((20, 220, 240), (30, 140, 250), (40, 200, 60), (50, 50, 220), (200, 120, 20))
FACADES = ((170, 190, 210), (150, 150, 150), (70, 90, 150), (210, 210, 205), (150, 210, 230))
FIXED = {
    "glass": (70, 60, 50),
    "tyre": (28, 28, 30),
    "headlight": (200, 235, 245),
    "taillight": (30, 30, 170),
    "plate": (225, 225, 220),
    "grille": (45, 45, 45),
    "window": (95, 75, 60),
    "red": (40, 40, 200),
    "white": (235, 235, 235),
    "bike": (40, 40, 45),
    "helmet": (235, 235, 240),
    "hair": (30, 40, 55),
    "pole": (125, 125, 120),
    "barrier": (230, 230, 230),
    "cone": (30, 110, 240),
}
#: Emissive colours at night (BGR, 0..255 before glow).
EMISSIVE = {"headlight": (230, 250, 255), "taillight": (40, 40, 255)}

# A part: (role, x0, x1, y0, y1, z0, z1) in fractions of the object's box (x, y in -0.5..0.5
# of length and width, z in 0..1 of height). Parts are drawn in list order.
PARTS: dict[int, tuple[tuple[str, float, float, float, float, float, float], ...]] = {
    CAR: (
        ("wheels", 0.22, 0.4, -0.49, 0.49, 0.0, 0.3),
        ("wheels", -0.38, -0.2, -0.49, 0.49, 0.0, 0.3),
        ("body", -0.5, 0.5, -0.5, 0.5, 0.1, 0.56),
        ("cabin", -0.32, 0.18, -0.44, 0.44, 0.56, 1.0),
    ),
    PEDESTRIAN: (
        ("legs", -0.2, 0.2, -0.25, 0.25, 0.0, 0.47),
        ("torso", -0.25, 0.25, -0.42, 0.42, 0.47, 0.86),
        ("head", -0.17, 0.17, -0.17, 0.17, 0.86, 1.0),
    ),
    CYCLIST: (
        ("bike", -0.5, 0.5, -0.12, 0.12, 0.0, 0.55),
        ("rider", -0.22, 0.12, -0.4, 0.4, 0.45, 0.86),
        ("head", -0.1, 0.08, -0.2, 0.2, 0.86, 1.0),
    ),
    POLE: (("pole", -0.5, 0.5, -0.5, 0.5, 0.0, 1.0),),
    BARRIER: (("barrier", -0.5, 0.5, -0.5, 0.5, 0.0, 1.0),),
    CONE: (("cone", -0.5, 0.5, -0.5, 0.5, 0.0, 1.0),),
    BUILDING: (("facade", -0.5, 0.5, -0.5, 0.5, 0.0, 1.0),),
}
FACES = ("front", "back", "left", "right", "top")
# Face corners as (x, y, z) choices of (min=0 / max=1) per corner, ordered (a,b) = (0,0),
# (1,0), (1,1), (0,1): ``a`` runs along the face, ``b`` upwards (top face: ``b`` along y).
_FACE_CORNERS = np.array(
    [
        [[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 1]],  # front (+x)
        [[0, 1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1]],  # back (-x)
        [[0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1]],  # left (+y)
        [[1, 0, 0], [0, 0, 0], [0, 0, 1], [1, 0, 1]],  # right (-y)
        [[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]],  # top (+z)
    ]
)
_FACE_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], dtype=float)
_SIDES = ("front", "back", "left", "right")

# Decals: (a0, a1, b0, b1, colour name) per (role, face).
Decal = tuple[float, float, float, float, str]
DECALS: dict[tuple[str, str], tuple[Decal, ...]] = {
    ("body", "front"): (
        (0.05, 0.22, 0.55, 0.78, "headlight"),
        (0.78, 0.95, 0.55, 0.78, "headlight"),
        (0.32, 0.68, 0.35, 0.6, "grille"),
        (0.4, 0.6, 0.12, 0.3, "plate"),
    ),
    ("body", "left"): ((0.11, 0.29, 0.0, 0.42, "tyre"), (0.71, 0.89, 0.0, 0.42, "tyre")),
    ("body", "right"): ((0.11, 0.29, 0.0, 0.42, "tyre"), (0.71, 0.89, 0.0, 0.42, "tyre")),
    ("body", "back"): (
        (0.04, 0.2, 0.55, 0.8, "taillight"),
        (0.8, 0.96, 0.55, 0.8, "taillight"),
        (0.4, 0.6, 0.3, 0.5, "plate"),
    ),
    ("cabin", "front"): ((0.06, 0.94, 0.08, 0.9, "glass"),),
    ("cabin", "back"): ((0.08, 0.92, 0.15, 0.88, "glass"),),
    ("cabin", "left"): ((0.06, 0.48, 0.12, 0.88, "glass"), (0.52, 0.94, 0.12, 0.88, "glass")),
    ("cabin", "right"): ((0.06, 0.48, 0.12, 0.88, "glass"), (0.52, 0.94, 0.12, 0.88, "glass")),
    ("head", "front"): ((0.0, 1.0, 0.0, 0.75, "skin"),),
    ("head", "left"): ((0.55, 1.0, 0.0, 0.7, "skin"),),
    ("head", "right"): ((0.0, 0.45, 0.0, 0.7, "skin"),),
    ("bike", "left"): ((0.0, 0.36, 0.0, 0.62, "tyre"), (0.64, 1.0, 0.0, 0.62, "tyre")),
    ("bike", "right"): ((0.0, 0.36, 0.0, 0.62, "tyre"), (0.64, 1.0, 0.0, 0.62, "tyre")),
    ("barrier", "left"): tuple((i / 8 + 0.02, i / 8 + 0.08, 0.35, 0.8, "red") for i in range(8)),
    ("barrier", "right"): tuple((i / 8 + 0.02, i / 8 + 0.08, 0.35, 0.8, "red") for i in range(8)),
    **{("cone", f): ((0.0, 1.0, 0.45, 0.65, "white"),) for f in _SIDES},
}


@dataclass(frozen=True)
class RenderedFrame:
    """A rendered image (BGR, uint8) and its instance mask (track id per pixel, 0: none)."""

    image: np.ndarray
    mask: np.ndarray


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG bytes of a BGR image (deterministic for one OpenCV build)."""
    ok, buf = cv2.imencode(
        ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    )
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


class CameraRenderer:
    """Renders the rig's camera ``sensor`` in ``world`` under ``condition``."""

    def __init__(
        self, world: World, rig: Rig, sensor: str, condition: Condition, seed: int = 0
    ) -> None:
        self.world = world
        self.condition = condition
        self.model = rig.camera(sensor)
        self.ego_to_cam = rig.transform(rig.frame, sensor)
        self.cam_to_ego = self.ego_to_cam.inverse()
        self._build_canvas()
        self._build_background()
        rng = np.random.Generator(np.random.PCG64([seed, 0x43414D]))
        h, w = self.model.height, self.model.width
        noise = rng.normal(0.0, 1.0, (2 * h, 2 * w, 3)).astype(np.float32)
        self._noise = noise
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        self._vignette = (1.0 - 0.18 * r2)[..., None].astype(np.float32)

    # -- setup ----------------------------------------------------------------------------

    def _build_canvas(self) -> None:
        """The pinhole canvas covering the lens's field of view, and the distortion maps."""
        cam = self.model
        w, h = cam.width, cam.height
        # Normalised, undistorted coordinates of every output pixel.
        uu, vv = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        uv = np.stack([uu.ravel(), vv.ravel()], axis=1)
        xy = cam.undistort_points(uv)
        target = np.stack([(uv[:, 0] - cam.cx) / cam.fx, (uv[:, 1] - cam.cy) / cam.fy], axis=1)
        target[:, 0] -= cam.K[0, 1] * target[:, 1] / cam.fx
        for _ in range(4):  # refine OpenCV's inverse with the exact forward model
            xy -= cam.distort_normalized(xy) - target
        fx, fy = cam.fx, cam.fy
        x_min, y_min = xy.min(axis=0) - 2.0 / fx
        x_max, y_max = xy.max(axis=0) + 2.0 / fx
        self.canvas_w = int(np.ceil((x_max - x_min) * fx)) + 2
        self.canvas_h = int(np.ceil((y_max - y_min) * fy)) + 2
        self.canvas_k = np.array([[fx, 0.0, -x_min * fx], [0.0, fy, -y_min * fy], [0.0, 0.0, 1.0]])
        k = self.canvas_k
        self._map_x = (k[0, 0] * xy[:, 0] + k[0, 2]).reshape(h, w).astype(np.float32)
        self._map_y = (k[1, 1] * xy[:, 1] + k[1, 2]).reshape(h, w).astype(np.float32)
        self._maps_fixed = cv2.convertMaps(self._map_x, self._map_y, cv2.CV_16SC2)
        self._maps_nearest = cv2.convertMaps(
            self._map_x, self._map_y, cv2.CV_16SC2, nninterpolation=True
        )
        self._xy_out = (
            xy[:, 0].reshape(h, w).astype(np.float32),
            xy[:, 1].reshape(h, w).astype(np.float32),
        )

    def _rays(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ego-frame directions per unit camera depth of normalised coordinates, and the
        depth (camera z) at which each ray meets the ground (``inf``: above the horizon)."""
        rays = np.stack([x, y, np.ones_like(x)], axis=-1) @ self.cam_to_ego.rotation.T
        cam_z = float(self.cam_to_ego.translation[2])
        down = rays[..., 2] < -1e-6
        depth = np.where(down, cam_z / np.where(down, -rays[..., 2], 1.0), np.inf)
        return rays, depth

    def _build_background(self) -> None:
        """Sky and terrain on the canvas; per output pixel its ray and ground depth (constant
        per drive: the ground is flat and the camera rigidly mounted)."""
        k = self.canvas_k
        uu, vv = np.meshgrid(
            np.arange(self.canvas_w, dtype=np.float64), np.arange(self.canvas_h, dtype=np.float64)
        )
        rays, depth = self._rays((uu - k[0, 2]) / k[0, 0], (vv - k[1, 2]) / k[1, 1])
        elevation = np.arctan2(rays[..., 2], np.hypot(rays[..., 0], rays[..., 1]))
        mix = np.clip(elevation / np.radians(35.0), 0.0, 1.0)[..., None]
        sky = SKY_HORIZON * (1.0 - mix) + SKY_TOP * mix
        bg = np.where(np.isfinite(depth)[..., None], np.array(TERRAIN, dtype=np.float64), sky)
        self._background = np.clip(bg, 0, 255).astype(np.uint8)
        x, y = self._xy_out
        rays, depth = self._rays(x.astype(np.float64), y.astype(np.float64))
        self._rays_ego = rays.astype(np.float32)
        self._ray_length = np.sqrt(1.0 + x * x + y * y).astype(np.float32)
        self._ground_depth = depth.astype(np.float32)

    # -- projection -----------------------------------------------------------------------

    def _project(self, pts_cam: np.ndarray) -> np.ndarray | None:
        """Fixed-point canvas pixels of one polygon (clipped at the near plane), or None."""
        if np.any(pts_cam[:, 2] < NEAR_M):
            pts_cam = _clip_near(pts_cam)
            if pts_cam.shape[0] < 3:
                return None
        return self._project_many(pts_cam[None])[0]

    def _project_many(self, pts_cam: np.ndarray) -> np.ndarray:
        """Fixed-point canvas pixels ``(..., 2)`` int32 of points ``(..., 3)`` in front."""
        k = self.canvas_k
        z = np.maximum(pts_cam[..., 2], 1e-6)
        uv = np.stack(
            [k[0, 0] * pts_cam[..., 0] / z + k[0, 2], k[1, 1] * pts_cam[..., 1] / z + k[1, 2]],
            axis=-1,
        )
        return np.ascontiguousarray(np.round(np.clip(uv, -1e5, 1e5) * _ONE), dtype=np.int32)

    # -- rendering ------------------------------------------------------------------------

    def render(self, t_s: float, rng: np.random.Generator) -> RenderedFrame:
        """The camera image at simulation time ``t_s`` (global shutter)."""
        cond = self.condition
        img = self._background.copy()
        ids = np.zeros((self.canvas_h, self.canvas_w), dtype=np.int32)
        emissive = np.zeros_like(img) if cond.headlights else None
        self._draw_road(img, t_s)
        boxes = self.world.boxes_in_ego(t_s, radius_m=220.0)
        faces = self._draw_objects(img, ids, emissive, boxes)

        m1, m2 = self._maps_fixed
        n1, n2 = self._maps_nearest
        out_ids = np.asarray(cv2.remap(ids, n1, n2, cv2.INTER_NEAREST))
        mask = faces.track[out_ids]
        warped = cv2.remap(img, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image = np.asarray(warped, dtype=np.float32)
        if emissive is not None:
            emissive = np.asarray(cv2.remap(emissive, m1, m2, cv2.INTER_LINEAR))
        self._apply_light(image, out_ids, faces, emissive)
        if cond.rain_streaks:
            image = self._rain(image, rng)
        image *= self._vignette
        h, w = image.shape[:2]
        oy, ox = rng.integers(0, h), rng.integers(0, w)
        image += self._noise[oy : oy + h, ox : ox + w] * np.float32(cond.camera_noise_dn)
        np.clip(image + 0.5, 0, 255, out=image)
        return RenderedFrame(image.astype(np.uint8), mask)

    def _draw_road(self, img: np.ndarray, t_s: float) -> None:
        """Road surfaces and markings as polygons on the ground plane."""
        world = self.world
        s_ego = world.ego_s(t_s)
        s = s_ego + np.concatenate([np.arange(-4.0, 40.0, 1.0), np.arange(40.0, 260.0, 4.0)])
        _, r_we, t_we = world.world_to_ego(t_s)

        def ground(s_vals: np.ndarray, d: float) -> np.ndarray:
            xy, _ = world.road.to_world(s_vals, np.full(s_vals.shape, d))
            pts = np.column_stack([xy, np.zeros(len(s_vals))]) @ r_we.T + t_we
            return self.ego_to_cam.apply(pts)

        def strip(d0: float, d1: float, colour: tuple[int, int, int]) -> None:
            a, b = ground(s, d0), ground(s, d1)
            keep = (a[:, 2] > NEAR_M) & (b[:, 2] > NEAR_M)
            if keep.sum() < 2:
                return
            poly = self._project(np.concatenate([a[keep], b[keep][::-1]]))
            if poly is not None:
                cv2.fillPoly(img, [poly], colour, cv2.LINE_AA, SHIFT)

        for side in (-1.0, 1.0):
            strip(side * SIDEWALK[0], side * 14.5, SIDEWALK_COLOUR)
            strip(side * PARKING[0], side * PARKING[1], PARKING_ASPHALT)
            strip(side * BIKE_LANE[0], side * BIKE_LANE[1], BIKE_LANE_COLOUR)
        strip(-CARRIAGEWAY_HALF, CARRIAGEWAY_HALF, ASPHALT)
        half = 0.08
        for d in (0.0, -CARRIAGEWAY_HALF, CARRIAGEWAY_HALF, -BIKE_LANE[1], BIKE_LANE[1]):
            strip(d - half, d + half, MARKING)
        # Dashed lines between lanes: 4 m dashes every 12 m.
        first = np.floor((s_ego - 4.0) / 12.0) * 12.0
        starts = first + 12.0 * np.arange(12)
        sv = np.stack([starts, starts + 4.0], axis=1).ravel()
        for d in (-LANE_WIDTH, LANE_WIDTH):
            a = ground(sv, d - half).reshape(-1, 2, 3)
            b = ground(sv, d + half).reshape(-1, 2, 3)
            quads = np.concatenate([a, b[:, ::-1]], axis=1)  # (n, 4, 3)
            quads = quads[np.all(quads[..., 2] > NEAR_M, axis=1)]
            if len(quads):
                cv2.fillPoly(img, list(self._project_many(quads)), MARKING, cv2.LINE_AA, SHIFT)

    def _draw_objects(
        self, img: np.ndarray, ids: np.ndarray, emissive: np.ndarray | None, boxes: Boxes
    ) -> _FaceTable:
        """Every box as class-specific parts, far to near (buildings first); fills ``ids``
        with face ids and returns the table of those faces."""
        centers_cam = self.ego_to_cam.apply(boxes.center)
        reach = 0.5 * np.linalg.norm(boxes.size, axis=1)
        visible = centers_cam[:, 2] > -reach
        k = self.canvas_k
        z = np.maximum(centers_cam[:, 2], 1e-3)
        for axis, extent in ((0, self.canvas_w), (1, self.canvas_h)):
            lo = -k[axis, 2] / k[axis, axis]
            hi = (extent - k[axis, 2]) / k[axis, axis]
            slack = reach * np.sqrt(1.0 + max(lo * lo, hi * hi))
            coord = centers_cam[:, axis]
            visible &= (coord - lo * z >= -slack) & (coord - hi * z <= slack)
        idx = np.flatnonzero(visible)
        dist = np.linalg.norm(centers_cam[idx], axis=1)
        order = idx[np.lexsort((-dist, boxes.kind[idx] != BUILDING))]
        items = self._items(boxes, order)
        faces = items.faces
        night = emissive is not None
        glow_layer = emissive if emissive is not None else img  # only drawn on at night
        lt = cv2.LINE_AA
        for pts, colour, face_id, glow in zip(
            items.polygons, items.colours, items.face_ids, items.emissive, strict=True
        ):
            cv2.fillConvexPoly(img, pts, colour, lt, SHIFT)
            if face_id:
                cv2.fillConvexPoly(ids, pts, face_id, cv2.LINE_8, SHIFT)
                if night:
                    cv2.fillConvexPoly(glow_layer, pts, (0, 0, 0), cv2.LINE_8, SHIFT)
            elif night and glow is not None:
                cv2.fillConvexPoly(glow_layer, pts, glow, lt, SHIFT)
        return faces

    def _items(self, boxes: Boxes, order: np.ndarray) -> _Items:
        """The polygons to fill, in painter's order: each visible face, then its decals."""
        if order.size == 0:
            return _Items.empty()
        part_rows = [r for i in order for r in _PART_ROWS[int(boxes.kind[i])]]
        obj = np.repeat(order, [len(_PART_ROWS[int(boxes.kind[i])]) for i in order])
        frac = _PART_FRAC[part_rows]  # (Q, 2, 3)
        size = boxes.size[obj]
        ext = frac * size[:, None, :]
        corners = ext[:, _FACE_CORNERS, np.arange(3)]  # (Q, 5, 4, 3) local, base at z=0
        yaw = boxes.yaw[obj]
        c, s = np.cos(yaw)[:, None, None], np.sin(yaw)[:, None, None]
        base = boxes.center[obj] - np.column_stack([np.zeros((len(obj), 2)), 0.5 * size[:, 2]])
        x = c * corners[..., 0] - s * corners[..., 1]
        y = s * corners[..., 0] + c * corners[..., 1]
        ego = np.stack([x, y, corners[..., 2]], axis=-1) + base[:, None, None, :]
        rot, trans = self.ego_to_cam.rotation, self.ego_to_cam.translation
        cam = ego @ rot.T + trans  # (Q, 5, 4, 3)
        nx = c[..., 0] * _FACE_NORMALS[:, 0] - s[..., 0] * _FACE_NORMALS[:, 1]
        ny = s[..., 0] * _FACE_NORMALS[:, 0] + c[..., 0] * _FACE_NORMALS[:, 1]
        n_ego = np.stack([nx, ny, np.broadcast_to(_FACE_NORMALS[:, 2], nx.shape)], axis=-1)
        n_cam = n_ego @ rot.T  # (Q, 5, 3)
        centre = cam.mean(axis=2)
        facing = np.einsum("qfi,qfi->qf", n_cam, centre) < 0.0
        shade = 0.62 + 0.38 * np.maximum(n_ego @ _SUN, 0.0)
        q_idx, f_idx = np.nonzero(facing)
        palettes = {int(i): _palette(int(boxes.kind[i]), int(boxes.appearance[i])) for i in order}
        # Cars that drive have their lights on (shown at night); parked ones do not.
        lights_on = np.hypot(boxes.velocity[:, 0], boxes.velocity[:, 1]) > 0.5

        quads: list[np.ndarray] = []
        params: list[tuple[float, float, float, float]] = []
        colours: list[tuple[int, int, int]] = []
        shades: list[float] = []
        face_of: list[int] = []
        glows: list[tuple[int, int, int] | None] = []
        for n_face, (q, f) in enumerate(zip(q_idx.tolist(), f_idx.tolist(), strict=True)):
            row = part_rows[q]
            i = int(obj[q])
            pal = palettes[i]
            sh = float(shade[q, f])
            quads.append(cam[q, f])
            params.append((0.0, 1.0, 0.0, 1.0))
            colours.append(pal[_PART_ROLE[row]])
            shades.append(sh)
            face_of.append(n_face)
            glows.append(None)
            kind = int(boxes.kind[i])
            decals = _window_grid(FACES[f], boxes.size[i]) if kind == BUILDING else _DECALS[row][f]
            for a0, a1, b0, b1, name in decals:
                quads.append(cam[q, f])
                params.append((a0, a1, b0, b1))
                colours.append(pal.get(name) or FIXED[name])
                shades.append(sh)
                face_of.append(-1)
                glows.append(EMISSIVE.get(name) if lights_on[i] else None)
        if not quads:
            return _Items.empty()
        quad = np.stack(quads)  # (I, 4, 3)
        prm = np.array(params)
        pts = _bilinear_many(quad, prm)  # (I, 4, 3)
        # Face plane of each face item, for depth: n·X = d in the camera frame.
        normals = n_cam[q_idx, f_idx]
        offsets = np.einsum("fi,fi->f", normals, centre[q_idx, f_idx])
        track = np.where(boxes.kind[obj[q_idx]] <= CYCLIST, boxes.track_id[obj[q_idx]], 0)
        faces = _FaceTable.build(normals, offsets, track)
        front = np.all(pts[..., 2] >= NEAR_M, axis=1)
        proj = self._project_many(pts)
        # Drop decals that cover (well) under a pixel.
        span = proj.max(axis=1) - proj.min(axis=1)
        is_face = np.array(face_of) >= 0
        keep = is_face | ((span[:, 0] > _ONE) & (span[:, 1] > _ONE))
        shaded = [
            tuple(c)
            for c in np.clip(np.array(colours) * np.array(shades)[:, None] + 0.5, 0, 255)
            .astype(int)
            .tolist()
        ]
        polygons, out_colours, face_ids, out_glows = [], [], [], []
        for j in np.flatnonzero(keep).tolist():
            poly = proj[j] if front[j] else self._project(pts[j])
            if poly is None:
                continue
            polygons.append(poly)
            out_colours.append(shaded[j])
            face_ids.append(face_of[j] + 1 if face_of[j] >= 0 else 0)
            out_glows.append(glows[j])
        return _Items(polygons, out_colours, face_ids, out_glows, faces)

    def _apply_light(
        self,
        img: np.ndarray,
        ids: np.ndarray,
        faces: _FaceTable,
        emissive: np.ndarray | None,
    ) -> None:
        """Haze or fog by depth, and night lighting, in place on the float image."""
        cond = self.condition
        fogged = np.isfinite(cond.visibility_m)
        if not fogged and not cond.headlights:
            if cond.light != 1.0:
                img *= np.float32(cond.light)
            return
        depth = self._depth(ids, faces)  # camera z, metres (inf: sky)
        fog = np.array(cond.fog_colour_bgr, dtype=np.float32) * np.float32(cond.light)
        if cond.headlights:
            light = self._headlights(depth)
            img *= cv2.merge([light, light, light])
            fog = np.array([18.0, 10.0, 6.0], dtype=np.float32)
        else:
            img *= np.float32(cond.light)
        if fogged:
            distance = cv2.multiply(depth, self._ray_length, scale=-3.0 / cond.visibility_m)
            transmission = cv2.exp(np.maximum(distance, np.float32(-80.0)))
            t3 = cv2.merge([transmission, transmission, transmission])
            img *= t3
            img += fog * (np.float32(1.0) - t3)
        if emissive is not None:
            glow = cv2.GaussianBlur(emissive, (0, 0), 3.0)
            np.maximum(img, emissive.astype(np.float32), out=img)
            img += np.float32(0.8) * glow.astype(np.float32)

    def _headlights(self, depth: np.ndarray) -> np.ndarray:
        """Light level per pixel at night: ambient, plus the ego's low beams (±25°, ~20 m)."""
        d = np.minimum(depth, np.float32(1e3))
        fwd = self._rays_ego[..., 0] * d - np.float32(2.0)
        side = np.abs(self._rays_ego[..., 1] * d)
        low = (self._rays_ego[..., 2] * d) < np.float32(-0.2)  # below the lamps' cut-off
        beam = np.clip(np.float32(1.6) - np.float32(2.4) * side / np.maximum(fwd, 1e-3), 0, 1)
        beam *= (fwd > 0.5) & low
        falloff = np.float32(1.0) / (np.float32(1.0) + (np.maximum(fwd, 0) / np.float32(22.0)) ** 2)
        light = np.float32(self.condition.light) + np.float32(1.1) * beam * falloff
        light[~np.isfinite(depth)] = 0.22  # the sky: deep blue
        return light.astype(np.float32)

    def _depth(self, ids: np.ndarray, faces: _FaceTable) -> np.ndarray:
        """Camera-z depth of every output pixel from its face id (ground/sky for id 0)."""
        x, y = self._xy_out
        inv = faces.a[ids] * x + faces.b[ids] * y + faces.c[ids]
        face_depth = np.float32(1.0) / np.maximum(inv, np.float32(1e-6))
        return np.where(ids > 0, face_depth, self._ground_depth)

    def _rain(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur slightly (water on the lens) and draw falling streaks."""
        image = np.asarray(cv2.GaussianBlur(image, (0, 0), 0.8), dtype=np.float32)
        h, w = image.shape[:2]
        n = self.condition.rain_streaks
        x0 = rng.uniform(0, w, n)
        y0 = rng.uniform(0, h, n)
        length = rng.uniform(0.02, 0.06, n) * h
        slant = rng.normal(0.15, 0.03, n)
        streaks = np.zeros((h, w), dtype=np.float32)
        for xa, ya, ln, sl in zip(x0, y0, length, slant, strict=True):
            p0 = (int(xa * _ONE), int(ya * _ONE))
            p1 = (int((xa + sl * ln) * _ONE), int((ya + ln) * _ONE))
            cv2.line(streaks, p0, p1, 1.0, 1, cv2.LINE_AA, SHIFT)
        image += 38.0 * streaks[..., None]
        return image


@dataclass(frozen=True)
class _FaceTable:
    """Per face id (0: background): ``1/z = a·x + b·y + c`` over normalised image coordinates
    ``(x, y)``, and the track id drawn (0: none)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    track: np.ndarray

    @classmethod
    def build(cls, normals: np.ndarray, offsets: np.ndarray, track: np.ndarray) -> _FaceTable:
        safe = np.where(np.abs(offsets) > 1e-9, offsets, -1e-9)
        coef = normals / safe[:, None]  # n·(x, y, 1)·z = d  =>  1/z = (n/d)·(x, y, 1)
        zero = np.zeros(1)
        return cls(
            a=np.concatenate([zero, coef[:, 0]]).astype(np.float32),
            b=np.concatenate([zero, coef[:, 1]]).astype(np.float32),
            c=np.concatenate([zero, coef[:, 2]]).astype(np.float32),
            track=np.concatenate([[0], track]).astype(np.int32),
        )


@dataclass(frozen=True)
class _Items:
    polygons: list[np.ndarray]
    colours: list[tuple[int, int, int]]
    face_ids: list[int]
    emissive: list[tuple[int, int, int] | None]
    faces: _FaceTable

    @classmethod
    def empty(cls) -> _Items:
        z = np.zeros(0)
        return cls([], [], [], [], _FaceTable.build(z.reshape(0, 3), z, z.astype(np.int32)))


def _bilinear_many(quads: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Sub-quads ``(I, 4, 3)`` at face parameters ``params`` ``(I, 4)`` = (a0, a1, b0, b1) of
    ``quads`` ``(I, 4, 3)`` with corners at (a, b) = (0,0) (1,0) (1,1) (0,1)."""
    p00, p10, p11, p01 = (quads[:, j, None, :] for j in range(4))
    a = params[:, [0, 1, 1, 0]][..., None]
    b = params[:, [2, 2, 3, 3]][..., None]
    return (1 - a) * (1 - b) * p00 + a * (1 - b) * p10 + a * b * p11 + (1 - a) * b * p01


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman clip of a 3-D polygon to ``z >= NEAR_M``."""
    out = []
    n = poly.shape[0]
    for j in range(n):
        a, b = poly[j], poly[(j + 1) % n]
        a_in, b_in = a[2] >= NEAR_M, b[2] >= NEAR_M
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (NEAR_M - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))


def _palette(kind: int, appearance: int) -> dict[str, tuple[int, int, int]]:
    """The colours of one object's parts and decals (stable per appearance id)."""
    pick = appearance
    if kind == CAR:
        paint = CAR_PAINTS[pick % len(CAR_PAINTS)]
        return {"body": paint, "cabin": paint, "wheels": FIXED["tyre"]}
    if kind == PEDESTRIAN:
        skin = SKIN[(pick // 7) % len(SKIN)]
        return {
            "legs": TROUSERS[(pick // 3) % len(TROUSERS)],
            "torso": SHIRTS[pick % len(SHIRTS)],
            "head": FIXED["hair"],
            "skin": skin,
        }
    if kind == CYCLIST:
        return {
            "bike": FIXED["bike"],
            "rider": JERSEYS[pick % len(JERSEYS)],
            "head": FIXED["helmet"],
            "skin": SKIN[(pick // 5) % len(SKIN)],
        }
    if kind == BUILDING:
        return {"facade": FACADES[pick % len(FACADES)]}
    name = {POLE: "pole", BARRIER: "barrier", CONE: "cone"}[kind]
    return {name: FIXED[name]}


def _window_grid(face: str, size: np.ndarray) -> list[Decal]:
    """A building facade's windows: 1.5 × 1.4 m every 3.5 m, one row per 3.2 m floor."""
    if face == "top":
        return []
    along = float(size[0] if face in ("left", "right") else size[1])
    height = float(size[2])
    out: list[Decal] = []
    for floor in range(max(1, int(height // 3.2))):
        b0, b1 = (floor * 3.2 + 1.0) / height, (floor * 3.2 + 2.4) / height
        if b1 >= 0.98:
            break
        for col in range(max(1, int(along // 3.5))):
            a0, a1 = (col * 3.5 + 1.0) / along, (col * 3.5 + 2.5) / along
            if a1 < 0.98:
                out.append((a0, a1, b0, b1, "window"))
    return out


def _part_tables() -> tuple[
    dict[int, list[int]], np.ndarray, list[str], list[list[tuple[Decal, ...]]]
]:
    """Flat tables of every kind's parts: rows per kind, extents, roles, decals per face."""
    rows: dict[int, list[int]] = {}
    frac: list[list[list[float]]] = []
    roles: list[str] = []
    decals: list[list[tuple[Decal, ...]]] = []
    for kind, parts in PARTS.items():
        rows[kind] = []
        for role, x0, x1, y0, y1, z0, z1 in parts:
            rows[kind].append(len(roles))
            frac.append([[x0, y0, z0], [x1, y1, z1]])
            roles.append(role)
            decals.append([DECALS.get((role, face), ()) for face in FACES])
    return rows, np.array(frac, dtype=np.float64), roles, decals


_PART_ROWS, _PART_FRAC, _PART_ROLE, _DECALS = _part_tables()
_SUN = np.array([0.35, 0.55, 0.76])  # ego frame, towards the sun
