"""Real test photos for the vision models: scikit-image's bundled sample photos, cropped, resized, normalised.

The photos are read as PNG files from the installed ``scikit-image`` wheel (``skimage/data/*.png``; skimage
itself is never imported) with Pillow (``pip install "accelsim[data]"``). Gray photos are replicated to RGB,
alpha is dropped.

Pipeline (all deterministic, uint8 until the last step):

1. **view** — a square crop of side ``round(fraction · min(H, W))`` whose top-left corner sits at
   ``round(anchor · (size_in − side))`` per axis (anchor 0 = top/left, 0.5 = centre, 1 = bottom/right),
   optionally mirrored left–right;
2. **resize** to ``size × size`` with an antialiased bilinear (triangle) filter: output pixel ``i`` samples
   input coordinate ``(i + 0.5)·scale − 0.5`` with weights ``max(0, 1 − |j − centre| / support)``,
   ``support = max(scale, 1)``, normalised to sum 1 (PIL's BILINEAR with reducing), rounded to uint8;
3. **preprocess** (EfficientNet-Lite, as in TF's ``efficientnet_lite_builder``: mean 127, std 128):
   ``x = (pixel − 127) / 128`` in float32, laid out [N, 3, H, W].

The default eval view is the centre crop of 87.5 % (= 224/256, the usual "resize 256, crop 224").
:data:`VIEWS` adds zooms, corner crops and a flip, giving ``len(SAMPLE_PHOTOS) · len(VIEWS)`` = 48 real,
distinct test images for FP32-vs-quantized agreement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.data.packages import find_package_file, library
from accelsim.errors import AccelsimError

__all__ = ["SAMPLE_PHOTOS", "VIEWS", "View", "load_photo", "read_image", "resize", "crop_view", "photo_views",
           "preprocess", "sample_inputs"]

SKIMAGE_PIP = "scikit-image==0.26.0"

#: Real photographs shipped as 8-bit PNG in scikit-image 0.26 (rocket/retina are JPEG, hence absent).
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle_left", "camera", "coins")


@dataclass(frozen=True)
class View:
    """A deterministic augmentation: square crop ``fraction`` of the short side at ``anchor`` (y, x)."""
    name: str
    fraction: float = 0.875
    anchor: tuple[float, float] = (0.5, 0.5)
    flip: bool = False


VIEWS = (
    View("center"), View("full", 1.0), View("zoom", 0.6),
    View("top_left", 0.75, (0.0, 0.0)), View("top_right", 0.75, (0.0, 1.0)),
    View("bottom_left", 0.75, (1.0, 0.0)), View("bottom_right", 0.75, (1.0, 1.0)),
    View("center_flip", flip=True),
)


def read_image(path) -> np.ndarray:
    """The pixels of an image file as Pillow decodes them, [H, W, C] (C = 1 for a gray image); a palette image
    is expanded to RGB (RGBA with a palette alpha), a 1-bit one to 8-bit gray."""
    image = library("PIL.Image", "reading photos", "Pillow")
    expand = {"P": "RGB", "PA": "RGBA", "1": "L"}
    try:
        with image.open(path) as img:
            pixels = np.asarray(img.convert(expand[img.mode]) if img.mode in expand else img)
    except (OSError, SyntaxError, ValueError) as exc:   # Pillow's UnidentifiedImageError is an OSError
        raise AccelsimError(f"{path}: cannot read the image ({exc})") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def load_photo(name: str) -> np.ndarray:
    """The sample photo ``name`` (see :data:`SAMPLE_PHOTOS`, or any 8-bit PNG in ``skimage/data``) as
    uint8 [H, W, 3]."""
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise AccelsimError(f"photo name must be a plain name like 'chelsea', got {name!r}")
    img = read_image(find_package_file("skimage", f"data/{name}.png", SKIMAGE_PIP))
    if img.dtype != np.uint8:
        raise AccelsimError(f"photo {name!r} is {img.dtype}, expected 8-bit")
    if img.shape[2] in (1, 2):  # gray (+ alpha)
        return np.repeat(img[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] antialiased bilinear weights (rows sum to 1)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale - 0.5
    j = np.arange(n_in)
    w = np.maximum(0.0, 1.0 - np.abs(j[None, :] - centre[:, None]) / support)
    return w / w.sum(axis=1, keepdims=True)


def resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 [H, W, C] to [out_h, out_w, C] (two 2-D GEMMs, float64)."""
    if img.ndim != 3 or img.dtype != np.uint8:
        raise AccelsimError(f"resize expects uint8 [H, W, C], got {img.dtype} {img.shape}")
    if out_h < 1 or out_w < 1:
        raise AccelsimError(f"resize: output size must be positive, got {out_h}×{out_w}")
    h, w, c = img.shape
    rows = _resize_matrix(h, out_h) @ img.reshape(h, w * c).astype(np.float64)        # [oh, W·C]
    cols = rows.reshape(out_h, w, c).transpose(1, 0, 2).reshape(w, out_h * c)        # [W, oh·C]
    out = (_resize_matrix(w, out_w) @ cols).reshape(out_w, out_h, c).transpose(1, 0, 2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def crop_view(img: np.ndarray, view: View = View("center"), size: int = 224) -> np.ndarray:
    """Apply one :class:`View` to uint8 [H, W, 3] and resize to [size, size, 3]."""
    if not 0.0 < view.fraction <= 1.0:
        raise AccelsimError(f"view {view.name!r}: fraction must be in (0, 1], got {view.fraction}")
    h, w = img.shape[:2]
    side = max(1, int(round(view.fraction * min(h, w))))
    top = int(round(view.anchor[0] * (h - side)))
    left = int(round(view.anchor[1] * (w - side)))
    crop = img[top:top + side, left:left + side]
    if view.flip:
        crop = crop[:, ::-1]
    return resize(np.ascontiguousarray(crop), size, size)


def photo_views(names=SAMPLE_PHOTOS, views=VIEWS, size: int = 224) -> tuple[np.ndarray, list[str]]:
    """Every view of every photo: uint8 [len(names)·len(views), size, size, 3] and labels
    ``"photo/view"`` (photo-major order)."""
    out, labels = [], []
    for name in names:
        img = load_photo(name)
        for view in views:
            out.append(crop_view(img, view, size))
            labels.append(f"{name}/{view.name}")
    return np.stack(out), labels


def preprocess(images: np.ndarray, mean: float = 127.0, std: float = 128.0) -> np.ndarray:
    """uint8 [N, H, W, 3] (or one [H, W, 3]) → float32 [N, 3, H, W] with ``x = (pixel − mean) / std``."""
    if images.dtype != np.uint8 or images.shape[-1] != 3 or images.ndim not in (3, 4):
        raise AccelsimError(f"preprocess expects uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    batch = images[None] if images.ndim == 3 else images
    x = (batch.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def sample_inputs(n: int | None = None, size: int = 224) -> tuple[np.ndarray, list[str]]:
    """The first ``n`` (default all 48) preprocessed real test images, float32 [n, 3, size, size], and
    their labels, in view-major order (every photo's centre crop first, then every photo's next view...),
    so a small ``n`` still covers all photos."""
    total = len(SAMPLE_PHOTOS) * len(VIEWS)
    n = total if n is None else n
    if not 1 <= n <= total:
        raise AccelsimError(f"sample_inputs: n must be in 1..{total}, got {n}")
    pairs = [(p, v) for v in VIEWS for p in SAMPLE_PHOTOS][:n]
    photos = {p: load_photo(p) for p in dict.fromkeys(p for p, _ in pairs)}
    images = np.stack([crop_view(photos[p], v, size) for p, v in pairs])
    return preprocess(images), [f"{p}/{v.name}" for p, v in pairs]
