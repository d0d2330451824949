"""A small PNG decoder in plain numpy + zlib (no Pillow): enough for the bundled sample photos.

Supported: non-interlaced PNGs of bit depth 8 (gray, gray+alpha, RGB, RGBA, palette) or 16 (gray, gray+alpha,
RGB, RGBA, returned as uint16), all five filter types. Everything else raises :class:`AccelsimError`.

Unfiltering (PNG spec §9): with ``a`` the byte ``bpp`` to the left, ``b`` the byte above, ``c`` the one
above-left (0 outside the image) and ``f`` the filtered byte, the raw byte is ``(f + P) mod 256`` where
``P`` is 0 (None), ``a`` (Sub), ``b`` (Up), ``floor((a + b)/2)`` (Average) or ``Paeth(a, b, c)``: the one of
``a, b, c`` closest to ``a + b − c``, ties broken in that order. Pixel (r, x) depends only on pixels of the
anti-diagonals before ``r + x``, so the decoder sweeps anti-diagonals, each step vectorised over all rows
(≈ H + W numpy steps per image instead of H·W Python steps).
"""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["decode_png", "read_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type → samples per pixel


def _chunks(data: bytes, source: str):
    if data[:8] != _SIGNATURE:
        raise AccelsimError(f"{source}: not a PNG file (bad signature)")
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length] or b"\0\0\0\0")
        if len(body) != length or zlib.crc32(kind + body) != crc:
            raise AccelsimError(f"{source}: corrupt PNG chunk {kind!r} at byte {pos}")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise AccelsimError(f"{source}: truncated PNG (no IEND chunk)")


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, height: int, width: int, bpp: int, source: str) -> np.ndarray:
    """Undo the per-row filters: ``raw`` is ``height`` rows of ``1 + width·bpp`` bytes → uint8 [H, W, bpp]."""
    rows = raw.reshape(height, 1 + width * bpp)
    ftype = rows[:, 0].astype(np.int64)
    if ftype.max(initial=0) > 4:
        raise AccelsimError(f"{source}: unknown PNG filter type {int(ftype.max())}")
    filt = rows[:, 1:].reshape(height, width, bpp).astype(np.int32)
    out = np.zeros((height + 1, width + 1, bpp), dtype=np.int32)  # row 0 / column 0: the zero border
    for d in range(height + width - 1):
        r = np.arange(max(0, d - width + 1), min(height - 1, d) + 1)
        x = d - r
        f, t = filt[r, x], ftype[r][:, None]
        a, b, c = out[r + 1, x], out[r, x + 1], out[r, x]
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, _paeth(a, b, c)], 0)
        out[r + 1, x + 1] = (f + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


def decode_png(data: bytes, source: str = "<png>") -> np.ndarray:
    """Decode PNG bytes into an array [H, W, C] (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).

    dtype is uint8 for bit depth 8 (palette images are expanded to RGB) and uint16 for bit depth 16.
    """
    header, idat, palette = None, [], None
    for kind, body in _chunks(data, source):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
    if header is None or not idat:
        raise AccelsimError(f"{source}: PNG without IHDR or IDAT")
    width, height, depth, ctype, _comp, _filt, interlace = header
    if ctype not in _CHANNELS or depth not in (8, 16) or (ctype == 3 and depth != 8):
        raise AccelsimError(f"{source}: unsupported PNG colour type {ctype} / bit depth {depth} "
                            "(supported: 8-bit gray/RGB/RGBA/palette, 16-bit gray/RGB/RGBA)")
    if interlace:
        raise AccelsimError(f"{source}: interlaced (Adam7) PNGs are not supported")
    channels = _CHANNELS[ctype]
    bpp = channels * depth // 8
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as exc:
        raise AccelsimError(f"{source}: corrupt PNG image data ({exc})") from exc
    if raw.size != height * (1 + width * bpp):
        raise AccelsimError(f"{source}: PNG data has {raw.size} bytes, expected {height * (1 + width * bpp)}")
    pix = _unfilter(raw, height, width, bpp, source)
    if depth == 16:
        return pix.reshape(height, width, channels, 2).view(">u2")[..., 0].astype(np.uint16)
    if ctype == 3:
        if palette is None or pix.max(initial=0) >= len(palette):
            raise AccelsimError(f"{source}: palette PNG with a missing or too short PLTE chunk")
        return palette[pix[..., 0]]
    return pix


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read and decode the PNG file at ``path`` (see :func:`decode_png`)."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise AccelsimError(f"{source}: cannot read PNG ({exc.strerror})") from exc
    return decode_png(data, source)
