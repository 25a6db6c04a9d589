"""What an image file's header says, read from its bytes without decoding: its size (to refuse a
decompression bomb before a byte of it is decoded) and its EXIF orientation (phones store photos sideways
and say so there). Formats: JPEG, PNG, BMP, GIF, WebP, TIFF. Unknown or damaged headers give None.
"""

from __future__ import annotations

import struct


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header, or None when it cannot be read."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":  # the key frame's start code: without it, not a header to trust
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    return None


def _tiff_entries(tiff: bytes):
    """(tag, value) of the first IFD of a TIFF structure (a TIFF file, or EXIF's payload)."""
    order = "<" if tiff[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    for k in range(min(count, 512)):
        e = offset + 2 + 12 * k
        tag, kind = struct.unpack(order + "HH", tiff[e : e + 4])
        value = struct.unpack(order + "H", tiff[e + 8 : e + 10])[0] if kind == 3 else struct.unpack(order + "I", tiff[e + 8 : e + 12])[0]
        yield tag, value


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    entries = dict(_tiff_entries(data))
    if 256 in entries and 257 in entries:
        return entries[256], entries[257]
    return None


def _exif_payload(data: bytes) -> bytes | None:
    """The TIFF structure inside a JPEG's APP1 Exif, a PNG's eXIf chunk or a WebP's EXIF chunk."""
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 4 < len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
                return data[i + 10 : i + 2 + length]
            if marker == 0xDA:  # image data starts: no EXIF before it
                return None
            i += 2 + length
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 8 <= len(data):
            (length,) = struct.unpack(">I", data[i : i + 4])
            kind = data[i + 4 : i + 8]
            if kind == b"eXIf":
                return data[i + 8 : i + 8 + length]
            if kind in (b"IDAT", b"IEND"):
                return None
            i += 12 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        i = 12
        while i + 8 <= len(data):
            kind, length = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
            if kind == b"EXIF":
                payload = data[i + 8 : i + 8 + length]
                return payload[6:] if payload[:6] == b"Exif\x00\x00" else payload
            i += 8 + length + (length & 1)
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return data
    return None


def orientation(data: bytes) -> int:
    """EXIF orientation 1-8 (1: as stored), 1 when there is none or it cannot be read."""
    try:
        tiff = _exif_payload(data)
        if not tiff or tiff[:2] not in (b"II", b"MM"):
            return 1
        for tag, value in _tiff_entries(tiff):
            if tag == 0x0112:
                return value if 1 <= value <= 8 else 1
    except (struct.error, IndexError, ValueError):
        return 1
    return 1
