"""What an image file's header says, read from its bytes without decoding: its size (to refuse a
decompression bomb before a byte of it is decoded) and its EXIF orientation (phones store photos sideways
and say so there; HEIF and AVIF in their own boxes). Formats: JPEG, PNG, BMP, GIF, WebP, TIFF, HEIF, AVIF,
JPEG 2000. Unknown or damaged headers give None.
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
        if data[4:8] == b"ftyp":
            return _bmff_size(data)
        if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
            return _jp2_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


OVERLONG = 64 << 20  # a chunk may outrun a truncated file by this much: past it, a length is a lie


def overlong_chunk(data: bytes | memoryview) -> str | None:
    """What is wrong when a PNG chunk declares far more bytes than the file holds, else None.

    OpenCV's PNG reader allocates a chunk's declared length before it reads it: one damaged length field
    (0x7fffffff in a 50 KB file) took a process to 4 GB. A truncated file whose last chunk runs a little past
    the end is left to the decoder, which says so."""
    if bytes(data[:8]) != b"\x89PNG\r\n\x1a\n":
        return None
    at, end = 8, len(data)
    while at + 8 <= end:
        (length,) = struct.unpack(">I", bytes(data[at : at + 4]))
        left = end - at - 12
        if length > left and length > OVERLONG:
            kind = bytes(data[at + 4 : at + 8]).decode("latin-1")
            return f"its {kind!r} chunk declares {length:,} bytes in a {end:,}-byte file"
        if bytes(data[at + 4 : at + 8]) == b"IEND":
            return None
        at += 12 + length
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


# HEIF/AVIF (quarter turns anticlockwise, then the mirror: 0 top to bottom, 1 left to right) -> the EXIF code
# that names the same turn
_BMFF_AS_EXIF = {(0, None): 1, (0, 0): 4, (0, 1): 2, (1, None): 8, (1, 0): 5, (1, 1): 7,
                 (2, None): 3, (2, 0): 2, (2, 1): 4, (3, None): 6, (3, 0): 7, (3, 1): 5}


def orientation(data: bytes) -> int:
    """EXIF orientation 1-8 (1: as stored), 1 when there is none or it cannot be read. HEIF and AVIF say it in
    their own irot/imir boxes, given here as the EXIF code of the same turn (their EXIF is not read: MIAF)."""
    if data[4:8] == b"ftyp":
        return _BMFF_AS_EXIF[bmff_turn(data)]
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


def bmff_turn(data: bytes) -> tuple[int, int | None]:
    """HEIF/AVIF: the primary image's own rotation (irot: quarter turns anticlockwise) and mirror (imir: 0 flips
    it top to bottom, 1 left to right, as libheif, libavif and Pillow read and write it; None for none), applied
    in that order, from the meta box. These files carry their orientation there, not in EXIF (MIAF).
    (0, None) when there is none or the boxes cannot be read (a meta box past the bytes given, say)."""
    turns, axis = 0, None
    for kind, start in _primary_properties(data):
        if kind == b"irot":
            turns = data[start] & 3
        elif kind == b"imir":
            axis = data[start] & 1
    return turns, axis


def _primary_properties(data: bytes) -> list[tuple[bytes, int]]:
    """(type, payload start) of each property (ipco) that the primary item (pitm) of a HEIF/AVIF file has."""
    try:
        meta = next((b for b in _boxes(data, 0, len(data)) if b[0] == b"meta"), None)
        if meta is None:
            return []
        children = {kind: (start, end) for kind, start, end in _boxes(data, meta[1] + 4, meta[2])}  # a FullBox
        iprp = {kind: (start, end) for kind, start, end in _boxes(data, *children[b"iprp"])}
        props = [(kind, start) for kind, start, _ in _boxes(data, *iprp[b"ipco"])]
        primary = None
        if b"pitm" in children:
            start = children[b"pitm"][0]
            primary = struct.unpack(">H", data[start + 4 : start + 6])[0] if data[start] == 0 else \
                struct.unpack(">I", data[start + 4 : start + 8])[0]
        return [props[i - 1] for i in _associations(data, *iprp[b"ipma"], primary) if 0 < i <= len(props)]
    except (struct.error, IndexError, KeyError, ValueError):
        return []


def _bmff_size(data: bytes) -> tuple[int, int] | None:
    """HEIF/AVIF: the primary image's size from its ispe property (a FullBox: width, height after 4 bytes)."""
    for kind, start in _primary_properties(data):
        if kind == b"ispe":
            return struct.unpack(">II", data[start + 4 : start + 12])
    return None


def _jp2_size(data: bytes) -> tuple[int, int] | None:
    """JPEG 2000 (.jp2): the ihdr box inside jp2h holds height, then width."""
    header = next((b for b in _boxes(data, 0, len(data)) if b[0] == b"jp2h"), None)
    ihdr = next((b for b in _boxes(data, header[1], header[2]) if b[0] == b"ihdr"), None) if header else None
    if ihdr is None:
        return None
    h, w = struct.unpack(">II", data[ihdr[1] : ihdr[1] + 8])
    return w, h


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, end) of each ISO-BMFF box in data[start:end]."""
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[i + 8 : i + 16])[0], 16
        elif size == 0:
            size = end - i
        if size < header:
            return
        yield kind, i + header, min(i + size, end)
        i += size


def _associations(data: bytes, start: int, end: int, item: int | None):
    """The 1-based ipco indices that an ipma box gives the item (the first item listed when item is None)."""
    version, flags = data[start], int.from_bytes(data[start + 1 : start + 4], "big")
    (count,) = struct.unpack(">I", data[start + 4 : start + 8])
    i = start + 8
    for _ in range(count):
        if version < 1:
            (item_id,) = struct.unpack(">H", data[i : i + 2])
            i += 2
        else:
            (item_id,) = struct.unpack(">I", data[i : i + 4])
            i += 4
        n = data[i]
        i += 1
        indices = []
        for _ in range(n):
            if flags & 1:
                indices.append(struct.unpack(">H", data[i : i + 2])[0] & 0x7FFF)
                i += 2
            else:
                indices.append(data[i] & 0x7F)
                i += 1
        if item is None or item_id == item:
            return indices
    return []
