"""The embedded synthetic dataset: procedurally rendered "moving shapes" videos.

A class is a *motion* (path x direction x speed). Everything visual -- shape, colours, textures,
object size, start position, static distractor shapes -- is drawn per video independently of the
label, so appearance alone cannot solve the task and a model has to use motion.

Videos are cheap to construct (only the trajectory is drawn) and render lazily: the background
and sprite are drawn once per video object, and ``read`` pastes the sprite only into the frames
asked for. Everything is a pure function of (seed, index), so any process renders the same pixels; the
trajectory does not depend on ``style``, so two styles show the same motions in different looks.

Besides classification, two task variants (the SEVERE miniature's task shift) render in memory:
``task: multilabel`` shows two objects with two different motions and labels both (multi-hot,
Charades-like); ``task: counting`` moves one object out along its path and back ``n`` times and
labels the count ``n`` (UCFRep-like). ``classes`` picks motions by name, e.g. pairs that differ
only in speed or only in path (the miniature's fine-grained label sets).
"""

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import numpy as np

from vssl_core.interfaces import VideoSample
from vssl_core.random import numpy_rng, sample_key
from vssl_core.registry import component

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "ring")
PATTERNS: tuple[str, ...] = ("solid", "gradient", "stripes", "checker", "blotches")

_KEY_STREAM = 0x5348  # separates this dataset's keys from other uses of sample_key
_MOTION_STREAM, _APPEARANCE_STREAM = 0, 1  # the first object; object j > 0 uses 2j and 2j + 1
TASKS: tuple[str, ...] = ("classification", "multilabel", "counting")

_D = math.sqrt(0.5)
DIRECTIONS: dict[str, tuple[float, float]] = {  # unit (dx, dy) in image coordinates, y down
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "upright": (_D, -_D),
    "downleft": (-_D, _D),
    "upleft": (-_D, -_D),
    "downright": (_D, _D),
}

# Motion magnitudes as fractions of the frame size covered over the whole clip, so the object
# stays in view for any (size, num_frames); the slow and fast ranges do not overlap.
_TRAVEL = {"slow": (0.15, 0.25), "fast": (0.45, 0.60)}  # line / zigzag, along the direction
_REVOLUTIONS = {"slow": (0.25, 0.40), "fast": (0.70, 0.90)}  # circle, turns per clip
_RADIUS = (0.15, 0.25)  # circle radius
_ZIGZAG_AMPLITUDE = (0.06, 0.10)  # perpendicular swing
_ZIGZAG_PERIODS = (1.5, 2.5)  # swings per clip
_SPRITE = (0.14, 0.24)  # side of the moving object's bounding square
_DISTRACTOR = (0.08, 0.18)  # side of a static distractor


@dataclass(frozen=True)
class Motion:
    """One class: a path ("line", "zigzag", "circle"), a direction and a speed."""

    path: str
    direction: str  # a key of DIRECTIONS, or "cw"/"ccw" for circles
    speed: str  # "slow" or "fast"

    @property
    def name(self) -> str:
        return f"{self.path}-{self.direction}-{self.speed}"


@dataclass(frozen=True)
class _Style:
    textured: bool  # patterned backgrounds and sprites (else solid colours)
    max_distractors: int  # static shapes baked into the background (classic styles)
    max_noise: float  # amplitude of static background noise, in uint8 levels
    # Real videos have an "up" (light and gravity come from above) and an arrow of time
    # (irreversible change); without them rotation and clip-order prediction have nothing to
    # learn. The classic styles put both on the whole frame, the same for every class: a
    # pretext model then reads them without looking at the motion (docs/benchmarks.md).
    light_from_above: float = 0.0  # background dims by this fraction from top to bottom
    dusk: float = 0.0  # frames darken by this fraction of full scale from first to last frame
    # The shaded styles (the default of 2026-12-07) carry the two cues on the moving objects
    # instead: the shading on the one object that moves, and its speed.
    object_light: float = 0.0  # moving objects dim by this fraction from top row to bottom row
    friction: float = 0.0  # objects slow down: speed goes from 1 + f to 1 - f times the mean
    # The default styles carry the up in the motion itself, where only motion features can read
    # it: every moving object is thrown, rising in the first half of the video and falling in
    # the second, g x frame size below its highest point at the first and last frames. It bends
    # the path in the video's own time (not the path time friction warps), so it is the same
    # forwards and backwards (no arrow of time), and the bend is centred on the path (zero
    # mean), so where a still object stands shows no up.
    gravity: float = 0.0
    # Static copies of the moving sprite (in the shaded styles lit from the other three sides:
    # the shading gives an "up" only on the object that moves, so a still frame has none).
    decoys: bool = False
    # Frames a decoy stands before it stands elsewhere, each decoy on its own schedule
    # (0: for the whole video, in its look's places). Decoys that stay put stand in a few places
    # a model can learn (the one look's, in four turns), and the object that moves is then the
    # copy standing anywhere else, moving or not; decoys drawn anew every few frames, at a
    # random moment of a random path, stand where a moving object stands. The default keeps
    # 0: with 8, how often the decoys move told speed prediction the playback speed, and MoCo
    # matched where they stood in the frames its two clips share (docs/benchmarks.md).
    decoy_hold: int = 0
    # Appearance from a pool shared by all videos (0: every video its own look): two clips of
    # one video share colour, background and sprite with one video in 4 x looks (the quarter
    # turns), not with it alone.
    looks: int = 0
    # Paths about the frame's centre (else anywhere they fit): where a video's object moves is
    # then no cue to which video it is, only how it moves.
    centred: bool = False
    centre_jitter: float = 0.08  # centred paths: their centre within this fraction of the frame's
    # Figure-ground contrast: every channel of an object is brighter than every channel of the
    # ground (hue stays random per video). With independent colours per channel the sign of an
    # object's contrast changed per channel and per video, and a small 3D CNN trained from
    # scratch stayed near chance (docs/benchmarks.md has the controlled test). The default
    # styles keep the objects brighter than the ground under their shading too:
    # figure[0] x (1 - object_light) >= ground[1].
    ground: tuple[int, int] = (0, 112)
    figure: tuple[int, int] = (144, 256)


CUES: tuple[str, ...] = ("light_from_above", "dusk", "object_light", "friction")
OPTIONS: tuple[str, ...] = (
    *CUES,
    "gravity",
    "decoys",
    "decoy_hold",
    "looks",
    "centred",
    "centre_jitter",
)  # the style fields a dataset can override
# cue ablations (pretext_cues.py): "frozen" stands the frame still at one random moment (each
# object anywhere on its path), "frozen_centre" each object at its path's centre and the decoys
# in the look's places (nothing with a place of its own beyond the path's centre)
MOTIONS: tuple[str, ...] = ("moving", "frozen", "frozen_centre", "shuffled")
_OBJECT_LIGHT, _FRICTION, _GRAVITY = 0.6, 0.8, 0.1  # the designs' cues (synthetic-data.md)

_CLASSIC = _Style(True, 3, 0.0, light_from_above=0.4, dusk=0.25)
# the default of 2026-12-07 (docs/benchmarks.md's tables of 2026-12-06/07): the up is the moving
# object's shading, its still copies lit from the other sides; a rotation model learned where
# the one look's copies stand and read the shading of the copy standing anywhere else, moving
# or not
_SHADED = _Style(
    True,
    0,
    0.0,
    object_light=_OBJECT_LIGHT,
    friction=_FRICTION,
    decoys=True,
    looks=1,
    centred=True,
    centre_jitter=0.0,
    ground=(0, 64),
    figure=(160, 256),
)
# only motion pays: the up is gravity (every object is thrown: its path bends downwards) and the
# arrow of time friction, both in how the object moves, so no still frame or place shows either
_THROWN = replace(_SHADED, object_light=0.0, gravity=_GRAVITY)
# the default from 2026-12-01 to 2026-12-07 (docs/benchmarks.md's tables of those days): a pool
# of 16 looks, shared by one video in 64 with its turn, which MoCo learned to match instead of
# the motion; paths within 8% of the frame from its centre
_POOLED = replace(_SHADED, looks=16, centre_jitter=0.08)
_STYLES = {
    # only motion pays: the up and the arrow of time live in the moving object's motion; every
    # video shows the one look, turned by a random quarter turn, moving about the frame's
    # centre, so two clips of a video share nothing but their motion. No pixel noise: under
    # tube masking, static noise in a hidden tube can never be seen, so it only adds an
    # irreducible floor to pixel-reconstruction losses
    "default": _THROWN,
    "flat": replace(_THROWN, textured=False),  # solid colours: a domain shift
    "noisy": replace(_THROWN, max_noise=24.0),  # static sensor noise: a domain shift
    "shaded": _SHADED,
    "shaded_flat": replace(_SHADED, textured=False),
    "shaded_noisy": replace(_SHADED, max_noise=24.0),
    "pooled": _POOLED,
    "pooled_flat": replace(_POOLED, textured=False),
    "pooled_noisy": replace(_POOLED, max_noise=24.0),
    # the default until 2026-12 (every number published before then): global light and dusk,
    # random static distractors, every video its own look
    "classic": _CLASSIC,
    "classic_flat": _Style(False, 0, 0.0),
    "classic_noisy": replace(_CLASSIC, max_noise=24.0),
}
STYLES: tuple[str, ...] = tuple(_STYLES)


def _class_table() -> tuple[Motion, ...]:
    """All motion classes, ordered so any prefix varies path and direction before speed.

    The first 4 are the axis-aligned fast lines, the first 10 add both fast circles and the
    axis-aligned fast zigzags; diagonals follow, then every fast class again at slow speed.
    """
    axis = ("right", "left", "up", "down")
    diagonal = ("upright", "downleft", "upleft", "downright")
    fast = [
        *(Motion("line", d, "fast") for d in axis),
        Motion("circle", "cw", "fast"),
        Motion("circle", "ccw", "fast"),
        *(Motion("zigzag", d, "fast") for d in axis),
        *(Motion("line", d, "fast") for d in diagonal),
        *(Motion("zigzag", d, "fast") for d in diagonal),
    ]
    return tuple(fast + [replace(m, speed="slow") for m in fast])


CLASS_TABLE: tuple[Motion, ...] = _class_table()

# ---------------------------------------------------------------------------------- trajectory


def _path_offsets(motion: Motion, u_T: np.ndarray, size: int, rng: np.random.Generator):
    """Offsets [T, 2] (x, y) of the object centre from the path centre at clip times ``u_T``."""
    if motion.path == "circle":
        radius = rng.uniform(*_RADIUS) * size
        turn = 1.0 if motion.direction == "cw" else -1.0  # y points down: +angle is clockwise
        angle_T = (
            rng.uniform(0, 2 * math.pi)
            + turn * 2 * math.pi * rng.uniform(*_REVOLUTIONS[motion.speed]) * u_T
        )
        return radius * np.stack([np.cos(angle_T), np.sin(angle_T)], axis=1)
    dx, dy = DIRECTIONS[motion.direction]
    along_T = (u_T - 0.5) * rng.uniform(*_TRAVEL[motion.speed]) * size
    offsets_T2 = along_T[:, None] * np.array([dx, dy])
    if motion.path == "zigzag":
        amplitude = rng.uniform(*_ZIGZAG_AMPLITUDE) * size
        phase_T = (rng.uniform(*_ZIGZAG_PERIODS) * u_T + rng.uniform()) % 1.0
        triangle_T = 4 * np.abs(phase_T - 0.5) - 1  # triangle wave in [-1, 1]
        offsets_T2 += (amplitude * triangle_T)[:, None] * np.array([-dy, dx])
    return offsets_T2


def _clip_time(num_frames: int, repeats: int, friction: float = 0.0) -> np.ndarray:
    """Path progress [T] in [0, 1]: once from 0 to 1 (repeats 0), or out and back ``repeats``
    times (a triangle wave that ends where it starts). ``friction`` f warps time so the object
    slows down steadily, from 1 + f to 1 - f times its mean speed, over the same path."""
    t_T = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    if friction:
        t_T = (1.0 + friction) * t_T - friction * t_T**2
    if repeats == 0:
        return t_T
    return 1.0 - np.abs(1.0 - 2.0 * ((repeats * t_T) % 1.0))


def _fall(num_frames: int, depth: float) -> np.ndarray:
    """Downward offsets [T] of a thrown object: a parabola in the video's time, highest at its
    middle and ``depth`` lower at its first and last frames, minus its mean (so the path's
    centre stays where it was)."""
    t_T = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.full(1, 0.5)
    fall_T = depth * (2.0 * t_T - 1.0) ** 2
    return fall_T - fall_T.mean()


def _placed_path(
    motion: Motion,
    num_frames: int,
    size: int,
    sprite: int,
    rng: np.random.Generator,
    repeats: int = 0,
    friction: float = 0.0,
    centred: bool = False,
    centre_jitter: float = 0.08,
    gravity: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Integer top-left corners [T, 2] (x, y), placed so the whole path stays inside the frame:
    anywhere it fits, or (``centred``) about the frame's centre, the path's centre within
    ``centre_jitter`` of the frame's size from it (one draw per path either way, so that the
    jitter changes where paths lie and nothing else); and the corner [2] at the path's centre.
    ``gravity`` g bends the path downwards in the video's time (the style's ``gravity``)."""
    u_T = _clip_time(num_frames, repeats, friction)
    offsets_T2 = _path_offsets(motion, u_T, size, rng)
    if gravity:
        offsets_T2[:, 1] += _fall(num_frames, gravity * size)
    low_2 = sprite / 2 - offsets_T2.min(axis=0)
    high_2 = size - sprite / 2 - offsets_T2.max(axis=0)
    if centred:
        jitter_2 = rng.uniform(-centre_jitter, centre_jitter, size=2) * size
        inside_2 = np.clip(size / 2 + jitter_2, low_2, np.maximum(low_2, high_2))
    else:
        inside_2 = rng.uniform(low_2, np.maximum(low_2, high_2))
    centre_2 = np.where(high_2 >= low_2, inside_2, (low_2 + high_2) / 2)
    corners_T2 = np.rint(centre_2 + offsets_T2 - sprite / 2).astype(np.int64)
    return corners_T2, np.rint(centre_2 - sprite / 2).astype(np.int64)


# ---------------------------------------------------------------------------------- appearance


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): x of shape [1, w], y of shape [h, 1]."""
    x = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    return x, y


def _pattern(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A mixing map [h, w] in [0, 1] between two colours, built from broadcast 1-D ramps."""
    x, y = _grid(h, w)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = math.cos(angle) * x + math.sin(angle) * y
    if kind == "solid":
        return np.zeros((h, w), np.float32)
    if kind == "gradient":
        return (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    if kind == "stripes":
        return (np.sin(2 * math.pi * rng.uniform(1.5, 5.0) * ramp) > 0).astype(np.float32)
    if kind == "checker":
        cells = int(rng.integers(2, 7))
        return ((np.floor(x * cells) + np.floor(y * cells)) % 2).astype(np.float32)
    if kind == "blotches":
        grid = int(rng.integers(3, 7))
        low_res = rng.random((grid, grid), dtype=np.float32)
        return low_res[(y[:, 0] * grid).astype(int)][:, (x[0] * grid).astype(int)]
    raise ValueError(f"unknown pattern {kind!r}; choose one of {PATTERNS}")


def _paint(pattern_hw: np.ndarray, colours_23: np.ndarray) -> np.ndarray:
    """Float RGB [3, h, w] mixing colour 0 (pattern 0) and colour 1 (pattern 1).

    Channels-first: numpy broadcasts over a trailing axis of 3 about 15x slower than over rows.
    """
    c0_311, c1_311 = colours_23.astype(np.float32).reshape(2, 3, 1, 1)
    rgb_3hw = pattern_hw[None] * (c1_311 - c0_311)
    rgb_3hw += c0_311
    return rgb_3hw


def _shape_mask(shape: str, side: int, angle: float) -> np.ndarray:
    """Boolean mask [side, side] of ``shape`` rotated by ``angle``, filling its square."""
    x, y = _grid(side, side)
    x, y = 2 * x - 1, 2 * y - 1
    c, s = math.cos(angle), math.sin(angle)
    x, y = c * x - s * y, s * x + c * y
    if shape == "circle":
        return x * x + y * y <= 1.0
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) <= 0.72
    if shape == "triangle":
        return (y <= 0.6) & (np.abs(x) <= (y + 1.0) * 0.6)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= 1.0
    if shape == "cross":
        arm = (np.abs(x) <= 0.3) | (np.abs(y) <= 0.3)
        return arm & (np.maximum(np.abs(x), np.abs(y)) <= 0.9)
    if shape == "ring":
        r2 = x * x + y * y
        return (r2 <= 1.0) & (r2 >= 0.25)
    raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")


def _random_colours(rng: np.random.Generator, n: int, levels: tuple[int, int]) -> np.ndarray:
    return rng.integers(*levels, size=(n, 3)).astype(np.float32)


def _contrasting_colour(
    rng: np.random.Generator, against_3: np.ndarray, style: _Style
) -> np.ndarray:
    """The one of 8 random figure colours farthest from ``against_3``, so the object stands out."""
    candidates_83 = _random_colours(rng, 8, style.figure)
    return candidates_83[np.argmax(np.sum((candidates_83 - against_3) ** 2, axis=1))]


def _sprite(
    rng: np.random.Generator, side: int, style: _Style, colour_3: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A random shape: float RGB [3, side, side] and its boolean mask [side, side]."""
    mask_hw = _shape_mask(SHAPES[rng.integers(len(SHAPES))], side, rng.uniform(0, 2 * math.pi))
    if not style.textured:
        return np.broadcast_to(colour_3[:, None, None], (3, side, side)), mask_hw
    low, high = style.figure
    second_3 = np.clip(colour_3 + rng.uniform(-80, 80, size=3), low, high - 1)
    kind = PATTERNS[rng.integers(len(PATTERNS))]
    return _paint(_pattern(kind, side, side, rng), np.stack([colour_3, second_3])), mask_hw


def _paste(canvas_hw3: np.ndarray, rgb_hw3: np.ndarray, mask_hw: np.ndarray, x0: int, y0: int):
    """Copy the masked sprite into ``canvas_hw3`` at top-left (x0, y0), clipped to the canvas."""
    h, w = mask_hw.shape
    ya, yb = max(y0, 0), min(y0 + h, canvas_hw3.shape[0])
    xa, xb = max(x0, 0), min(x0 + w, canvas_hw3.shape[1])
    if ya >= yb or xa >= xb:
        return
    sy, sx = slice(ya - y0, yb - y0), slice(xa - x0, xb - x0)
    np.copyto(canvas_hw3[ya:yb, xa:xb], rgb_hw3[sy, sx], where=mask_hw[sy, sx, None])


def _hwc(rgb_3hw: np.ndarray) -> np.ndarray:
    """A channels-last view (no copy)."""
    return rgb_3hw.transpose(1, 2, 0)


def _background(rng: np.random.Generator, size: int, style: _Style) -> np.ndarray:
    """Float RGB [3, size, size]: a solid or patterned field, static distractors, static noise
    (unlit: see ``_lit_from_above``)."""
    colours_23 = _random_colours(rng, 2, style.ground)
    if not style.textured:
        return np.broadcast_to(colours_23[0, :, None, None], (3, size, size))
    kind = PATTERNS[1 + rng.integers(len(PATTERNS) - 1)]  # never solid when textured
    bg_3hw = _paint(_pattern(kind, size, size, rng), colours_23)
    for _ in range(int(rng.integers(0, style.max_distractors + 1))):
        side = max(3, round(rng.uniform(*_DISTRACTOR) * size))
        rgb_3hw, mask_hw = _sprite(rng, side, style, _random_colours(rng, 1, style.figure)[0])
        x0, y0 = rng.integers(0, size - side + 1, size=2)
        _paste(_hwc(bg_3hw), _hwc(rgb_3hw), mask_hw, int(x0), int(y0))
    noise = rng.uniform(0, style.max_noise)
    bg_3hw += (rng.random((size, size), dtype=np.float32) - 0.5) * (2 * noise)
    return bg_3hw


def _lit_from(rgb_3hw: np.ndarray, fraction: float, side: str = "above") -> np.ndarray:
    """An image (the background, or a sprite) lit from ``side`` ("above", "below", "left",
    "right"): dimmed by ``fraction`` from that edge to the opposite one."""
    if not fraction:
        return rgb_3hw
    along = rgb_3hw.shape[1] if side in ("above", "below") else rgb_3hw.shape[2]
    ramp = np.linspace(1.0, 1.0 - fraction, along, dtype=np.float32)
    if side in ("below", "right"):
        ramp = ramp[::-1]
    return rgb_3hw * (ramp[:, None] if side in ("above", "below") else ramp[None, :])


def _lit_from_above(rgb_3hw: np.ndarray, fraction: float) -> np.ndarray:
    return _lit_from(rgb_3hw, fraction, "above")


def _to_uint8_hwc(rgb_3hw: np.ndarray) -> np.ndarray:
    """Contiguous uint8 [h, w, 3], so per-frame copies are plain memory copies."""
    return np.clip(_hwc(rgb_3hw), 0, 255).astype(np.uint8, order="C")


_DECOY_LIGHTS = ("below", "left", "right")  # the moving object is lit from above


@dataclass(frozen=True)
class _Look:
    """What a video looks like: the static background [S, S, 3] (uint8, decoys baked in where
    they stay put) and per moving object its sprite [s, s, 3] (uint8) and mask [s, s]; and the
    decoys that change place (``decoy_hold`` > 0), each a sprite and mask."""

    background_hw3: np.ndarray
    sprites: tuple[tuple[np.ndarray, np.ndarray], ...]
    decoys: tuple[tuple[np.ndarray, np.ndarray], ...] = ()

    @property
    def sides(self) -> list[int]:
        return [mask_hw.shape[0] for _, mask_hw in self.sprites]


_POOL_STREAM = 0x4C4F4F4B  # "LOOK": the shared pool's draws, independent of the dataset seed
_LOOK_STREAM = 1000  # a video's pick from the pool (object streams are 0, 1, 2j, 2j + 1)
_SHUFFLE_STREAM = 1001  # the frame order of motion: shuffled
_FREEZE_STREAM = 1002  # the moment motion: frozen shows
_DECOY_STREAM = 1003  # decoy j's places where they change (streams 1003 to 1005)


def _path_point(
    rng: np.random.Generator,
    size: int,
    side: int,
    style: _Style,
    motions: Sequence[Motion] = CLASS_TABLE,
) -> np.ndarray:
    """The top-left corner (x, y) of a moving object of side ``side`` at a random moment of the
    path of a random one of ``motions``: where a decoy stands, so that its place does not tell
    it apart."""
    motion = motions[rng.integers(len(motions))]
    corners_T2, _ = _placed_path(
        motion,
        32,
        size,
        side,
        rng,
        0,
        style.friction,
        style.centred,
        style.centre_jitter,
        style.gravity,
    )
    return corners_T2[rng.integers(len(corners_T2))]


def _turned_corner(x0: int, y0: int, side: int, size: int, turns: int) -> tuple[int, int]:
    """Where the top-left corner of a ``side`` square at (x0, y0) lands when the frame turns by
    ``turns`` quarter turns (as ``np.rot90`` turns an image: counter-clockwise)."""
    for _ in range(turns % 4):
        x0, y0 = y0, size - x0 - side
    return x0, y0


@functools.lru_cache(maxsize=1024)
def _pooled_look(style: _Style, look: int, turns: int, size: int, objects: int) -> _Look:
    """Look ``look`` of the shared pool, turned by ``turns`` quarter turns, rendered once per
    process.

    The pool is the same for every dataset seed, so that many videos (of every class) share a
    look; each video turns its look at random, so a look seen again and again has no "up". The
    look's decoys are copies of its moving sprite standing where a moving object could be, each
    lit from another side than the moving one (lit from above): a still frame shows the same
    sprite lit from each side, and only its motion tells which copy is lit from above."""
    rng = numpy_rng(sample_key(0, 0, look, stream=_POOL_STREAM))
    sides = [max(3, round(rng.uniform(*_SPRITE) * size)) for _ in range(objects)]
    bg_3hw = _background(rng, size, style)
    mean_3 = bg_3hw.reshape(3, -1).mean(axis=1)
    sprites = [_sprite(rng, side, style, _contrasting_colour(rng, mean_3, style)) for side in sides]
    spots = [_path_point(rng, size, sides[0], style) for _ in _DECOY_LIGHTS]
    lights = rng.permutation(_DECOY_LIGHTS)
    bg_3hw = np.rot90(bg_3hw, turns, axes=(1, 2)).copy()
    sprites = [(np.rot90(rgb, turns, axes=(1, 2)), np.rot90(m, turns)) for rgb, m in sprites]
    decoys = ()
    if style.decoys and style.decoy_hold:
        decoys = _decoy_sprites(*sprites[0], style.object_light, [str(x) for x in lights])
    elif style.decoys:
        rgb_3hw, mask_hw = sprites[0]
        for (x0, y0), light in zip(spots, lights, strict=True):
            x0, y0 = _turned_corner(int(x0), int(y0), sides[0], size, turns)
            decoy_3hw = _lit_from(rgb_3hw, style.object_light, str(light))
            _paste(_hwc(bg_3hw), _hwc(decoy_3hw), mask_hw, x0, y0)
    lit = [(_to_uint8_hwc(_lit_from(rgb, style.object_light)), mask) for rgb, mask in sprites]
    return _Look(_to_uint8_hwc(bg_3hw), tuple(lit), decoys)


def _decoy_sprites(
    rgb_3hw: np.ndarray, mask_hw: np.ndarray, light: float, sides: Sequence[str]
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The moving sprite lit from each of ``sides``: decoys pasted frame by frame."""
    return tuple((_to_uint8_hwc(_lit_from(rgb_3hw, light, side)), mask_hw) for side in sides)


def _decoy_schedule(
    rng: np.random.Generator,
    num_frames: int,
    hold: int,
    size: int,
    side: int,
    style: _Style,
    motions: Sequence[Motion],
) -> np.ndarray:
    """One decoy's top-left corner [T, 2] in every frame: a random moment of the path of a
    random one of ``motions`` (the dataset's classes: where its moving objects stand), drawn
    anew every ``hold`` frames from a random phase (so the decoys of a video do not all move at
    once and a clip's start does not tell when they do)."""
    phase = int(rng.integers(hold))
    count = (num_frames + phase) // hold + 1
    spots_S2 = np.stack([_path_point(rng, size, side, style, motions) for _ in range(count)])
    return spots_S2[(np.arange(num_frames) + phase) // hold]


# ---------------------------------------------------------------------------------- video


class ShapesVideo:
    """One moving-shapes video; satisfies the ``Video`` protocol and renders frames on read.

    Besides ``num_frames`` and ``fps``: ``size`` (H == W), ``motion`` (its class),
    ``sprite_size`` (side of the object's square) and ``top_left_T2`` (the object's top-left
    corner (x, y) in every frame), which tests and visualisations can use as ground truth.
    ``repeats`` n > 0 moves the object out along its path and back n times (counting);
    ``others`` adds one more moving object per motion (multilabel), each with its own look and
    path (``others_top_left`` [T, 2] each); the first object renders exactly as without them.
    ``look`` is the video's entry in the shared pool of looks (None: a look of its own).
    ``motion_mode`` "frozen" stands the frame still at one random moment (every object
    somewhere on its path), "frozen_centre" every object at its path's centre (and the decoys
    in the look's places), and "shuffled" shows the frames in a fixed random order: cue
    ablations that remove the motion. Decoys that change place (the style's ``decoy_hold``)
    stand on paths of ``decoy_motions`` (the dataset's classes).
    """

    def __init__(
        self,
        motion: Motion,
        key: int,
        num_frames: int,
        size: int,
        fps: float,
        style: str,
        repeats: int = 0,
        others: Sequence[Motion] = (),
        cues: Mapping[str, float | int | bool] | None = None,
        motion_mode: str = "moving",
        decoy_motions: Sequence[Motion] = CLASS_TABLE,
    ) -> None:
        self.motion = motion
        self.decoy_motions = tuple(decoy_motions)
        self.num_frames = num_frames
        self.size = size
        self.fps = fps
        self.style = style
        self.repeats = repeats
        self.others = tuple(others)
        self.motion_mode = motion_mode
        self._key = key
        self._look = replace(_STYLES[style], **(cues or {}))  # the style with overridden cues
        if motion_mode == "frozen_centre":  # no place of their own: decoys in the look's places
            self._look = replace(self._look, decoy_hold=0)
        pool = self._look.looks
        pick = numpy_rng(key, _LOOK_STREAM).integers([pool or 1, 4])  # look, quarter turns
        self.look = int(pick[0]) if pool else None
        self._turns = int(pick[1])
        sides = self._pooled.sides if pool else [None] * (1 + len(self.others))
        self.sprite_size, self.top_left_T2, centre_2 = self._place(motion, _MOTION_STREAM, sides[0])
        placed = [self._place(m, 2 * (j + 1), sides[j + 1]) for j, m in enumerate(self.others)]
        self.others_sprite_size = [side for side, _, _ in placed]
        self.others_top_left = [top_left_T2 for _, top_left_T2, _ in placed]
        self._path_centres = [centre_2, *(centre for _, _, centre in placed)]

    def _place(
        self, motion: Motion, stream: int, side: int | None
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """An object's sprite side (its own, or its pooled look's), its top-left corners [T, 2]
        and the corner at its path's centre [2], from its motion stream."""
        rng = numpy_rng(self._key, stream)
        own_side = max(3, round(rng.uniform(*_SPRITE) * self.size))  # drawn in every style
        side = own_side if side is None else side
        look = self._look
        corners_T2, centre_2 = _placed_path(
            motion,
            self.num_frames,
            self.size,
            side,
            rng,
            self.repeats,
            look.friction,
            look.centred,
            look.centre_jitter,
            look.gravity,
        )
        return side, corners_T2, centre_2

    @property
    def _pooled(self) -> _Look:
        return _pooled_look(self._look, self.look, self._turns, self.size, 1 + len(self.others))

    @cached_property
    def _assets(self) -> _Look:
        """The pooled look, or the video's own (background and sprites drawn once per video)."""
        if self.look is not None:
            return self._pooled
        rng = numpy_rng(self._key, _APPEARANCE_STREAM)
        style = self._look
        bg_3hw = _background(rng, self.size, style)
        # the sprite's colour contrasts with the background as its style lights it, so that
        # overriding light_from_above changes the lighting and nothing else
        as_styled = _lit_from_above(bg_3hw, _STYLES[self.style].light_from_above)
        mean_3 = as_styled.reshape(3, -1).mean(axis=1)
        bg_3hw = _lit_from_above(bg_3hw, style.light_from_above)
        sprites, decoys = [], ()
        for j, side in enumerate([self.sprite_size, *self.others_sprite_size]):
            if j > 0:
                rng = numpy_rng(self._key, 2 * j + 1)
            rgb_3hw, mask_hw = _sprite(rng, side, style, _contrasting_colour(rng, mean_3, style))
            if j == 0 and style.decoys and style.decoy_hold:
                decoys = _decoy_sprites(rgb_3hw, mask_hw, style.object_light, _DECOY_LIGHTS)
            rgb_3hw = _lit_from_above(rgb_3hw, style.object_light)
            sprites.append((_to_uint8_hwc(rgb_3hw), mask_hw))
        return _Look(_to_uint8_hwc(bg_3hw), tuple(sprites), decoys)

    @cached_property
    def _decoy_corners(self) -> list[np.ndarray]:
        """Where each decoy that changes place stands, frame by frame ([T, 2] each)."""
        hold, side = self._look.decoy_hold, self.sprite_size
        return [
            _decoy_schedule(
                numpy_rng(self._key, _DECOY_STREAM + j),
                self.num_frames,
                hold,
                self.size,
                side,
                self._look,
                self.decoy_motions,
            )
            for j in range(len(self._assets.decoys))
        ]

    @cached_property
    def _shuffled_T(self) -> np.ndarray:
        return numpy_rng(self._key, _SHUFFLE_STREAM).permutation(self.num_frames)

    def _moments(self, idx_T: np.ndarray) -> np.ndarray:
        """The moments of the motion shown at frames ``idx_T`` (all of them under "moving";
        one random moment under "frozen", so the still object stands anywhere on its path)."""
        if self.motion_mode == "frozen":
            moment = numpy_rng(self._key, _FREEZE_STREAM).integers(self.num_frames)
            return np.full_like(idx_T, moment)
        if self.motion_mode == "shuffled":
            return self._shuffled_T[idx_T]
        return idx_T

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 [T, H, W, 3]."""
        idx_T = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx_T.size and (idx_T.min() < 0 or idx_T.max() >= self.num_frames):
            bad = idx_T[(idx_T < 0) | (idx_T >= self.num_frames)][0]
            raise IndexError(f"frame index {bad} out of range [0, {self.num_frames})")
        look = self._assets
        moment_T = self._moments(idx_T)
        frames_THW3 = np.empty((idx_T.size, self.size, self.size, 3), np.uint8)
        frames_THW3[...] = look.background_hw3
        for (rgb_hw3, mask_hw), corners_T2 in zip(look.decoys, self._decoy_corners, strict=True):
            for frame_hw3, (x0, y0) in zip(frames_THW3, corners_T2[moment_T].tolist(), strict=True):
                _paste(frame_hw3, rgb_hw3, mask_hw, x0, y0)
        paths = [self.top_left_T2, *self.others_top_left]
        if self.motion_mode == "frozen_centre":  # every frame: the path's centre
            paths = [np.broadcast_to(c, (self.num_frames, 2)) for c in self._path_centres]
        for (rgb_hw3, mask_hw), top_left_T2 in zip(look.sprites, paths, strict=True):
            corners = top_left_T2[moment_T].tolist()
            for frame_hw3, (x0, y0) in zip(frames_THW3, corners, strict=True):
                _paste(frame_hw3, rgb_hw3, mask_hw, x0, y0)
        dusk = self._look.dusk
        if dusk and idx_T.size:  # darker by up to dusk * 255 levels at the last frame
            time_T = idx_T if self.motion_mode.startswith("frozen") else moment_T
            dim_T111 = (dusk * 255 * time_T / max(self.num_frames - 1, 1)).astype(np.uint8)
            dim_T111 = dim_T111[:, None, None, None]
            np.maximum(frames_THW3, dim_T111, out=frames_THW3)  # saturating subtract, in place
            np.subtract(frames_THW3, dim_T111, out=frames_THW3)
        return frames_THW3

    def __repr__(self) -> str:
        extra = f", repeats={self.repeats}" if self.repeats else ""
        extra += "".join(f", +{m.name}" for m in self.others)
        base = _STYLES[self.style]
        for cue in OPTIONS:
            if getattr(self._look, cue) != getattr(base, cue):
                extra += f", {cue}={getattr(self._look, cue)}"
        extra += f", look={self.look}" if self.look is not None else ""
        extra += f", motion={self.motion_mode!r}" if self.motion_mode != "moving" else ""
        return (
            f"ShapesVideo({self.motion.name}, frames={self.num_frames}, size={self.size}, "
            f"style={self.style!r}{extra})"
        )


# ---------------------------------------------------------------------------------- dataset


def _check_fraction(name: str, value: float, high: float, meaning: str) -> float:
    """A style option given as a number in [0, ``high``]; ``meaning`` says what it measures."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value <= high:
        raise ValueError(
            f"moving_shapes: {name} must be a number in [0, {high:g}] ({meaning}) or null for "
            f"the style's, got {value!r}"
        )
    return float(value)


def _check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"moving_shapes: {name} must be an integer {bounds}, got {value!r}")


def _pick_classes(names: list[str] | None, num_classes: int) -> list[Motion]:
    """The first ``num_classes`` motions, or the named ones (then exactly ``num_classes``)."""
    if names is None:
        _check_int("num_classes", num_classes, 1, len(CLASS_TABLE))
        return list(CLASS_TABLE[:num_classes])
    by_name = {m.name: m for m in CLASS_TABLE}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(
            f"moving_shapes: unknown classes {unknown}; a class is path-direction-speed, one of "
            f"{', '.join(by_name)}"
        )
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"moving_shapes: classes must be distinct and not empty, got {names}")
    if num_classes != len(names):
        raise ValueError(
            f"moving_shapes: classes names {len(names)} motions but num_classes is {num_classes}; "
            f"set num_classes: {len(names)}"
        )
    return [by_name[n] for n in names]


def _check_counts(task: str, count_range: tuple[int, int] | list[int] | None) -> tuple[int, int]:
    if task != "counting":
        if count_range is not None:
            raise ValueError(
                f"moving_shapes: count_range is used by task: counting only (task is {task!r}); "
                "remove it or set task: counting"
            )
        return (0, 0)
    low, high = count_range if count_range is not None else (1, 4)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ValueError(
            f"moving_shapes: count_range must be two integers 1 <= low <= high, got {count_range}"
        )
    return low, high


@component("dataset", name="moving_shapes")
class MovingShapes:
    """Synthetic videos of one moving shape; the class is its motion, never its appearance.

    ``classes`` names the motions to use (default: the first ``num_classes`` of the table).
    ``task``: "classification" (label = the motion), "multilabel" (two objects with motions
    ``i % K`` and another one, float32 multi-hot [K]) or "counting" (one object goes out and
    back ``n`` times, n cycling through ``count_range`` (default 1-4) so every motion meets
    every count; label = float n).

    ``style`` "default" (and its domain shifts "flat" and "noisy") is built so that only motion
    pays: the "up" is gravity (``gravity``: every object is thrown, its path bending downwards
    in the video's time, which a clip shows and a still frame does not), the arrow of time is
    its speed (``friction``: it slows down from 1 + f to 1 - f times its mean speed along the
    same path), three still copies of the moving sprite stand in the frame (``decoys``), and
    appearance comes from a pool of ``looks`` shared by all videos (one look, turned by a random
    quarter turn) with every path run about the frame's centre (``centred``, ``centre_jitter``
    0), so two clips of a video share nothing that tells it from the others but their motion.
    The "shaded" styles (the default of 2026-12-07) put the up in the shading of the one object
    that moves instead (``object_light``: it dims from its top row to its bottom row; the still
    copies are lit from the other sides): a rotation model learned where the one look's copies
    stand and read the shading of the copy standing anywhere else, moving or not. The
    "pooled" styles (the default from 2026-12-01 to 2026-12-07) draw from 16 looks and put paths
    within 8% of the frame from its centre: a contrastive model learned to match the look,
    shared with one video in 64. The "classic" styles (the default until 2026-12) light the
    background from above (``light_from_above``) and darken frames over time (``dusk``): global
    cues a pretext model reads without looking at the motion. Each of these options overrides
    its style's value (None: the style's; 0 or false removes it), so one cue can be removed to
    see whether a model relies on it; ``centre_jitter`` is how far from the frame's centre a
    centred path's centre may lie (a fraction of the frame); ``decoy_hold`` n > 0 stands each
    decoy n frames in one place, then elsewhere (0: in its look's places for the whole video).
    ``motion`` "frozen" (the frame stands still at one random moment: objects anywhere on their
    path), "frozen_centre" (objects still at their path's centre, decoys in the look's places:
    nothing with a place of its own beyond the path's centre) and "shuffled" (frames in a fixed
    random order) remove the motion itself, for the same test.
    """

    def __init__(
        self,
        num_samples: int = 1024,
        num_classes: int = 10,
        num_frames: int = 32,
        size: int = 112,
        style: Literal[
            "default",
            "flat",
            "noisy",
            "shaded",
            "shaded_flat",
            "shaded_noisy",
            "pooled",
            "pooled_flat",
            "pooled_noisy",
            "classic",
            "classic_flat",
            "classic_noisy",
        ] = "default",
        seed: int = 0,
        fps: float = 25.0,
        classes: list[str] | None = None,
        task: Literal["classification", "multilabel", "counting"] = "classification",
        count_range: tuple[int, int] | None = None,
        light_from_above: float | None = None,
        dusk: float | None = None,
        object_light: float | None = None,
        friction: float | None = None,
        gravity: float | None = None,
        decoys: bool | None = None,
        decoy_hold: int | None = None,
        looks: int | None = None,
        centred: bool | None = None,
        centre_jitter: float | None = None,
        motion: Literal["moving", "frozen", "frozen_centre", "shuffled"] = "moving",
    ) -> None:
        _check_int("num_samples", num_samples, 1)
        _check_int("num_frames", num_frames, 1)
        _check_int("size", size, 16, 4096)
        _check_int("seed", seed, 0, 2**63 - 1)
        if style not in STYLES:
            raise ValueError(f"moving_shapes: style must be one of {STYLES}, got {style!r}")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf:
            raise ValueError(f"moving_shapes: fps must be a positive finite number, got {fps!r}")
        if task not in TASKS:
            raise ValueError(f"moving_shapes: task must be one of {TASKS}, got {task!r}")
        given = zip(CUES, (light_from_above, dusk, object_light, friction), strict=True)
        self.cues: dict[str, float | int | bool] = {}  # the style options this dataset overrides
        for cue, value in given:
            if value is not None:
                self.cues[cue] = _check_fraction(cue, value, 0.9, "0: no such cue")
        for name, flag in (("decoys", decoys), ("centred", centred)):
            if flag is None:
                continue
            if not isinstance(flag, bool):
                raise ValueError(f"moving_shapes: {name} must be true, false or null, got {flag!r}")
            self.cues[name] = flag
        if centre_jitter is not None:
            self.cues["centre_jitter"] = _check_fraction(
                "centre_jitter",
                centre_jitter,
                0.5,
                "0: every centred path exactly about the frame's centre",
            )
        if gravity is not None:
            self.cues["gravity"] = _check_fraction(
                "gravity",
                gravity,
                0.5,
                "how far below its highest point, as a fraction of the "
                "frame, a thrown object is at the video's first and last frames; 0: no gravity",
            )
        if looks is not None:
            _check_int("looks", looks, 0, 1 << 20)  # 0: every video its own look
            self.cues["looks"] = int(looks)
        if decoy_hold is not None:
            _check_int("decoy_hold", decoy_hold, 0, 1 << 20)  # 0: decoys stay put
            self.cues["decoy_hold"] = int(decoy_hold)
        if motion not in MOTIONS:
            raise ValueError(f"moving_shapes: motion must be one of {MOTIONS}, got {motion!r}")
        self.motion = motion
        self.motions: list[Motion] = _pick_classes(classes, num_classes)
        if task == "multilabel" and len(self.motions) < 2:
            raise ValueError("moving_shapes: task multilabel shows two motions: num_classes >= 2")
        self.count_range = _check_counts(task, count_range)
        self.num_samples = int(num_samples)
        self.num_classes = len(self.motions)
        self.num_frames = int(num_frames)
        self.size = int(size)
        self.style = style
        self.seed = int(seed)
        self.fps = float(fps)
        self.task = task
        self.classes: list[str] = [m.name for m in self.motions]

    def __len__(self) -> int:
        return self.num_samples

    def _class_ids(self, index: int) -> tuple[int, ...]:
        """The motions of video ``index``: ``index % K`` first (balanced), for multilabel then
        a different one that cycles through the others."""
        k = self.num_classes
        first = index % k
        if self.task != "multilabel":
            return (first,)
        return (first, (first + 1 + (index // k) % (k - 1)) % k)

    def count(self, index: int) -> int:
        """Counting: the out-and-back cycles of video ``index`` (cycles through count_range)."""
        low, high = self.count_range
        return low + (index // self.num_classes) % (high - low + 1)

    def label(self, index: int) -> int | float | np.ndarray:
        """Classification: the class index; balanced, every class gets the same count, give or
        take one. Multilabel: float32 multi-hot [K]. Counting: the cycle count as a float."""
        if self.task == "counting":
            return float(self.count(index))
        ids = self._class_ids(index)
        if self.task == "classification":
            return ids[0]
        vec_K = np.zeros(self.num_classes, np.float32)
        vec_K[list(ids)] = 1.0
        return vec_K

    def __getitem__(self, index: int) -> VideoSample:
        i = operator.index(index)
        if i < 0:
            i += self.num_samples
        if not 0 <= i < self.num_samples:
            raise IndexError(f"moving_shapes index {index} out of range [0, {self.num_samples})")
        ids = self._class_ids(i)
        key = sample_key(self.seed, 0, i, stream=_KEY_STREAM)
        video = ShapesVideo(
            self.motions[ids[0]],
            key,
            self.num_frames,
            self.size,
            self.fps,
            self.style,
            repeats=self.count(i) if self.task == "counting" else 0,
            others=[self.motions[j] for j in ids[1:]],
            cues=self.cues,
            motion_mode=self.motion,
            decoy_motions=self.motions,
        )
        return VideoSample(
            video=video, label=self.label(i), index=i, video_id=f"moving_shapes_{i:06d}"
        )

    def __repr__(self) -> str:
        extra = f", task={self.task!r}" if self.task != "classification" else ""
        extra += "".join(f", {cue}={value}" for cue, value in self.cues.items())
        extra += f", motion={self.motion!r}" if self.motion != "moving" else ""
        return (
            f"MovingShapes(num_samples={self.num_samples}, num_classes={self.num_classes}, "
            f"num_frames={self.num_frames}, size={self.size}, style={self.style!r}, "
            f"seed={self.seed}{extra})"
        )
