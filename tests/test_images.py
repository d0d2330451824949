"""accelsim.data.images: photos read with Pillow (checked against an independent PNG encoder and recorded
pixel digests), the real test photos and their preprocessing."""
from __future__ import annotations

import hashlib
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from accelsim.data.images import read_image
from accelsim.errors import AccelsimError
from conftest import require_package

FIX = Path(__file__).parent / "fixtures"


# --- a minimal independent PNG encoder, applying each filter type by the spec's forward formulas -----------
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _encode(img: np.ndarray, ctype: int, depth: int, filters, palette=None) -> bytes:
    h, w = img.shape[:2]
    rows = img.astype(">u2").view(np.uint8) if depth == 16 else img.astype(np.uint8)
    rows = rows.reshape(h, -1)
    bpp = rows.shape[1] // w
    out, prev = bytearray(), [0] * rows.shape[1]
    for y in range(h):
        cur, ft = [int(v) for v in rows[y]], filters[y % len(filters)]
        line = []
        for i, x in enumerate(cur):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ft]
            line.append((x - pred) % 256)
        out += bytes([ft] + line)
        prev = cur
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    extra = _chunk(b"PLTE", palette.astype(np.uint8).tobytes()) if palette is not None else b""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(bytes(out)))
            + _chunk(b"IEND", b""))


def _decode(tmp_path, data: bytes) -> np.ndarray:
    (tmp_path / "x.png").write_bytes(data)
    return read_image(tmp_path / "x.png")


@pytest.mark.parametrize("ctype,channels,depth", [(0, 1, 8), (2, 3, 8), (4, 2, 8), (6, 4, 8), (0, 1, 16)])
def test_reader_roundtrip_all_filters(tmp_path, ctype, channels, depth):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(ctype * 100 + depth)
    img = rng.integers(0, 2 ** depth, size=(11, 7, channels))
    img[3:6] = img[3:6] // 64 * 64  # some flat areas so Paeth/Average hit their tie branches
    data = _encode(img, ctype, depth, filters=[0, 1, 2, 3, 4, 4, 3, 2, 1])
    got = _decode(tmp_path, data)
    assert got.dtype == (np.uint16 if depth == 16 else np.uint8)
    np.testing.assert_array_equal(got, img)


def test_reader_palette_and_errors(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    pal = np.array([[0, 0, 0], [255, 10, 20], [1, 2, 3]])
    idx = np.array([[0, 1, 2], [2, 1, 0]])[:, :, None]
    np.testing.assert_array_equal(_decode(tmp_path, _encode(idx, 3, 8, [4], palette=pal)), pal[idx[:, :, 0]])
    good = _encode(np.zeros((2, 2, 1)), 0, 8, [0])
    for bad in (b"GIF89a" + good[6:], good[:20] + bytes([good[20] ^ 1]) + good[21:], good[:40]):
        with pytest.raises(AccelsimError, match="x.png: cannot read the image"):
            _decode(tmp_path, bad)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)                   # as if Pillow were not installed
    with pytest.raises(AccelsimError, match=r"reading photos needs the 'Pillow' library, which is not installed: "
                                            r"pip install \"accelsim\[data\]\""):
        _decode(tmp_path, good)


# sha256 of the decoded pixels, recorded with accelsim's former PNG decoder and Pillow 12 (identical then).
KNOWN = {
    "astronaut": ((512, 512, 3), "a8c429c18afa7b0fd5673e598d73a21225d94c864a71bbb3885126fdecb41071"),
    "camera": ((512, 512, 1), "5cb24482a53416f99052258be2b1ee38cd31c559a70c8a8b321cba231b332e21"),
    "horse": ((328, 400, 4), "b4c6970ddb84fda67ccd541d88a47d902e6ab80c8c17046097fbf2f16d106498"),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_decoder_known_images(name):
    require_package("skimage", "scikit-image")
    from accelsim.data.packages import find_package_file
    img = read_image(find_package_file("skimage", f"data/{name}.png", "scikit-image"))
    shape, digest = KNOWN[name]
    assert img.shape == shape
    assert hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest() == digest


def test_resize_and_preprocess_formulas():
    from accelsim.data.images import preprocess, resize
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    np.testing.assert_array_equal(resize(img, 4, 6), img)               # identity
    flat = np.full((9, 9, 3), 200, np.uint8)
    np.testing.assert_array_equal(resize(flat, 4, 5), np.full((4, 5, 3), 200, np.uint8))  # weights sum to 1
    ramp = np.repeat((np.arange(40) * 4)[None, :, None], 3, axis=2).astype(np.uint8)   # 4·j along x
    out = resize(np.repeat(ramp, 2, axis=0), 2, 16)                      # scale 2.5: interior stays linear
    centre = (np.arange(16) + 0.5) * 2.5 - 0.5
    np.testing.assert_array_equal(out[0, 2:-2, 0], np.rint(4 * centre[2:-2]))
    x = preprocess(np.array([[[0, 127, 255]]], np.uint8))
    assert x.shape == (1, 3, 1, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x.ravel(), [-127 / 128, 0.0, 1.0])
    with pytest.raises(AccelsimError):
        preprocess(np.zeros((2, 3, 4, 4), np.uint8))


def test_photo_views_deterministic_and_distinct():
    require_package("skimage", "scikit-image")
    from accelsim.data.images import SAMPLE_PHOTOS, VIEWS, load_photo, photo_views, sample_inputs
    imgs, labels = photo_views(names=("chelsea",), size=64)
    again, _ = photo_views(names=("chelsea",), size=64)
    assert imgs.shape == (len(VIEWS), 64, 64, 3) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs, again)
    assert len({im.tobytes() for im in imgs}) == len(VIEWS)               # every view differs
    flip = labels.index("chelsea/center_flip")
    np.testing.assert_array_equal(imgs[flip], imgs[labels.index("chelsea/center")][:, ::-1])
    assert load_photo("camera").shape == (512, 512, 3)                    # gray → RGB
    x, lab = sample_inputs(len(SAMPLE_PHOTOS), size=32)
    assert x.shape == (len(SAMPLE_PHOTOS), 3, 32, 32)
    assert [s.split("/")[0] for s in lab] == list(SAMPLE_PHOTOS)          # view-major: all photos first
    with pytest.raises(AccelsimError, match="plain name"):
        load_photo("../etc/passwd")


def test_pipeline_reproduces_golden_crops():
    """The crops stored with the EfficientNet golden are exactly what our pipeline makes today."""
    require_package("skimage", "scikit-image")
    from accelsim.data.images import View, crop_view, load_photo
    golden = np.load(FIX / "effnet_lite0_golden.npz")
    for i, name in enumerate(golden["names"]):
        np.testing.assert_array_equal(crop_view(load_photo(str(name)), View("center"), 224), golden["crops"][i])
