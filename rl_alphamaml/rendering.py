"""Episode videos: MuJoCo's offscreen GL backend, animated GIFs, and GIF clips in TensorBoard.

Kind-agnostic helpers of ``rl-alphamaml evaluate RUN_DIR --video`` (the episodes themselves come from
the kind's module, see :mod:`agents.video`); this module imports neither MuJoCo nor an environment.

* **GL backend.** MuJoCo renders offscreen through the backend named by ``MUJOCO_GL`` (``egl``,
  ``osmesa`` or ``glfw``; unset: gymnasium tries them in that order). MuJoCo reads the variable when it
  is *imported*, and an unusable value (``osmesa`` without the OSMesa library, a misspelling) makes
  ``import mujoco`` itself fail. :func:`guard_gl_backend` checks the variable before that import and,
  if it cannot work, disables MuJoCo's GL so that the numbers can still be computed; the rendering
  check of the kind's module then reports :data:`GL_HELP`.
* **GIFs.** Clips are animated GIFs written with Pillow (no video encoder needed); MP4 would need
  ffmpeg (``imageio-ffmpeg``), which is not a dependency.
* **TensorBoard.** ``SummaryWriter.add_video`` needs moviepy; instead each GIF goes into an image
  summary, which TensorBoard's Images tab shows animated, captioned (:func:`add_gif`).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import dataclasses
import io
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_alphamaml.errors import UserError

if TYPE_CHECKING:
    from rl_alphamaml.logging import EventFile

VIDEO_DIR = "videos"
"""Clips go to ``RUN_DIR/eval/videos``."""

GL_BACKENDS = ("egl", "osmesa", "glfw")
"""The values of ``MUJOCO_GL`` that gymnasium's MuJoCo renderer accepts."""

GL_HELP = (
    "to enable MuJoCo offscreen rendering, on a machine without a GPU install OSMesa "
    "(`apt-get install libosmesa6`) and run with MUJOCO_GL=osmesa; with a GPU, run with MUJOCO_GL=egl "
    "(`apt-get install libegl1` if it is missing)"
)

_GL_LIBRARIES = {"osmesa": ("OSMesa", "libosmesa6"), "egl": ("EGL", "libegl1")}

_disabled_gl: str | None = None  # why guard_gl_backend disabled MuJoCo's GL in this process


class RenderingUnavailableError(UserError):
    """Episodes cannot be rendered here; the message says why and how to enable rendering."""


def gl_backend_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why ``MUJOCO_GL`` as set cannot work, found without importing MuJoCo; ``None`` if no problem is seen.

    Unset is no problem here (gymnasium then tries every backend when it first renders); a value that is
    not one of :data:`GL_BACKENDS`, or ``osmesa``/``egl`` without their system library, is.
    """
    value = (os.environ if environ is None else environ).get("MUJOCO_GL")
    if value is None:
        return None
    backend = value.strip().lower()
    if backend not in GL_BACKENDS:
        return f"MUJOCO_GL={value!r} is not one of MuJoCo's offscreen backends ({', '.join(GL_BACKENDS)})"
    if backend in _GL_LIBRARIES:
        library, package = _GL_LIBRARIES[backend]
        if ctypes.util.find_library(library) is None:
            return f"MUJOCO_GL={value} but the {library} library is not installed (Debian/Ubuntu package {package})"
    return None


def guard_gl_backend() -> str | None:
    """Before MuJoCo is imported: if ``MUJOCO_GL`` cannot work, disable MuJoCo's GL and return why.

    Otherwise ``import mujoco`` would fail (e.g. ``MUJOCO_GL=osmesa`` without OSMesa raises an
    AttributeError from PyOpenGL) and nothing could be evaluated. With GL disabled everything but
    MuJoCo rendering works; :func:`unavailable` then reports the reason returned here. Does nothing
    once MuJoCo is imported (the variable has been read by then).
    """
    global _disabled_gl
    if "mujoco" in sys.modules:
        return None
    problem = gl_backend_problem()
    if problem is not None:
        os.environ["MUJOCO_GL"] = "disable"
        _disabled_gl = problem
    return problem


def unavailable(error: BaseException | str) -> RenderingUnavailableError:
    """The error to raise when rendering failed with ``error``: its cause and :data:`GL_HELP`."""
    if _disabled_gl is not None:
        reason = _disabled_gl
    else:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        detail = f"{type(error).__name__}: {first_line}" if isinstance(error, BaseException) else first_line
        setting = f"MUJOCO_GL={os.environ['MUJOCO_GL']}" if "MUJOCO_GL" in os.environ else "MUJOCO_GL unset"
        reason = f"{setting}: {detail}"
    return RenderingUnavailableError(f"cannot render MuJoCo offscreen ({reason}); {GL_HELP}")


@contextlib.contextmanager
def quiet_unraisable() -> Iterator[None]:
    """Drop "Exception ignored in ..." reports while probing a renderer.

    When gymnasium's offscreen viewer fails in its constructor, its ``__del__`` later raises too; Python
    prints that as a second, misleading traceback. Inside this block such reports are dropped.
    """
    previous = sys.unraisablehook
    sys.unraisablehook = lambda _unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = previous


# --------------------------------------------------------------------------------------------------
# Frames and GIFs
# --------------------------------------------------------------------------------------------------


def label_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of an RGB ``frame`` (H, W, 3, uint8) with ``text`` on a dark band in its top-left corner."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    _, _, right, bottom = draw.textbbox((4, 3), text)
    draw.rectangle((0, 0, right + 4, bottom + 3), fill=(30, 30, 30))
    draw.text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(image)


def side_by_side(left: Sequence[np.ndarray], right: Sequence[np.ndarray], gap: int = 4) -> list[np.ndarray]:
    """Frames of two clips next to each other (white ``gap`` pixels between); the shorter holds its last frame."""
    if not left or not right:
        raise ValueError("side_by_side needs at least one frame in each clip")
    n = max(len(left), len(right))
    out = []
    for t in range(n):
        a, b = left[min(t, len(left) - 1)], right[min(t, len(right) - 1)]
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"frames of different heights: {a.shape} and {b.shape}")
        spacer = np.full((a.shape[0], gap, 3), 255, dtype=np.uint8)
        out.append(np.concatenate([a, spacer, b], axis=1))
    return out


def encode_gif(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """An animated, looping GIF of RGB ``frames`` (H, W, 3, uint8) at ``fps`` frames per second (Pillow).

    GIF delays are whole centiseconds, so the rate is rounded (20 fps: 50 ms; 10 fps: 100 ms). All frames
    share one 255-colour palette taken from up to 8 frames spread over the clip, without dithering: a
    third smaller than Pillow's per-frame dithered palettes on MuJoCo frames, and no colour flicker.
    """
    from PIL import Image

    if not frames:
        raise ValueError("a GIF needs at least one frame")
    arrays = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
    picks = np.linspace(0, len(arrays) - 1, num=min(8, len(arrays))).round().astype(int)
    palette = Image.fromarray(np.concatenate([arrays[i] for i in picks], axis=0)).quantize(
        colors=255, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE) for a in arrays]
    buffer = io.BytesIO()
    duration = max(20, round(100.0 / fps) * 10)
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return buffer.getvalue()


@dataclasses.dataclass
class Clip:
    """One encoded clip: its file stem (``task0_before_after``), the GIF, its size and a caption."""

    name: str
    gif: bytes
    width: int
    height: int
    frames: int
    caption: str
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def add_gif(events: EventFile, tag: str, clip: Clip, step: int) -> None:
    """Log ``clip`` as an image summary holding the GIF bytes: TensorBoard's Images tab plays it, with the
    caption as its description.

    The summary is the image plugin's own format (a string tensor ``[width, height, encoded image]``, as
    TensorBoard itself converts legacy image summaries to; those lose the description on the way).
    ``SummaryWriter.add_video`` would write a GIF too, but needs moviepy to make it.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.image import metadata
    from tensorboard.util import tensor_util

    meta = metadata.create_summary_metadata(display_name=tag, description=clip.caption)
    tensor = tensor_util.make_tensor_proto([str(clip.width).encode(), str(clip.height).encode(), clip.gif])
    events.add_summary(Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=tensor)]), step)


def write_videos(run_dir: str | Path, clips: Sequence[Clip], step: int) -> list[Path]:
    """Save ``clips`` as ``RUN_DIR/eval/videos/<name>.gif`` and log them (and their captions) to TensorBoard.

    The TensorBoard events go to ``RUN_DIR/eval`` (next to :func:`rl_alphamaml.evaluation.write_report`'s
    scalars), as images tagged ``eval/video/<name>`` at ``step`` (the checkpoint's iteration), with the
    captions as the text ``eval/videos``. Each GIF is written atomically; a write that fails (a full disk) is
    one :class:`UserError` (:func:`rl_alphamaml.evaluation.write_outputs`).
    """
    from rl_alphamaml.atomic import write_atomic
    from rl_alphamaml.evaluation import log_events, write_outputs

    eval_dir = Path(run_dir) / "eval"
    out = eval_dir / VIDEO_DIR
    paths = [out / f"{clip.name}.gif" for clip in clips]

    def gif(path: Path, clip: Clip) -> Callable[[], object]:
        return lambda: write_atomic(path, lambda f: f.write(clip.gif))

    def events(writer: EventFile) -> None:
        for clip in clips:
            add_gif(writer, f"eval/video/{clip.name}", clip, step)
        writer.add_text("eval/videos", "\n\n".join(f"**{c.name}**: {c.caption}" for c in clips), step)

    write_outputs([*((str(path), gif(path, clip)) for path, clip in zip(paths, clips)),
                   (f"TensorBoard events in {eval_dir}", lambda: log_events(eval_dir, events))],
                  "the adaptation report is written")
    for clip, path in zip(clips, paths):
        print(f"{path}: {clip.caption}")
    return paths
