"""Image formats from phones, browsers and scanners: JFIF, GIF, netpbm, and HEIF/HEIC (an iPhone's default)
through the heif extra; without it, a HEIC file is an error row that says what to install."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import ASTRONAUT
from fer_edge import imageheader
from fer_edge.cli.app import app
from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError
from fer_edge.imageio import read_image

pillow_heif = pytest.importorskip("pillow_heif", reason="needs pillow-heif (pip install -e '.[dev]')")
from PIL import Image, ImageOps  # noqa: E402  (pillow comes with pillow-heif)

runner = CliRunner()


def write_heic(path: Path, bgr: np.ndarray, exif_orientation: int | None = None) -> None:
    h = pillow_heif.from_bytes(mode="BGR", size=(bgr.shape[1], bgr.shape[0]), data=np.ascontiguousarray(bgr).tobytes())
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        h.info["exif"] = exif.tobytes()  # pillow-heif also writes it as the container's rotation (irot)
    h.save(str(path), quality=95)


def rows_by_name(stdout: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in csv.DictReader(io.StringIO(stdout)):
        rows.setdefault(Path(r["path"]).name, []).append(r)
    return rows


@pytest.fixture
def phone_folder(tmp_path, astronaut) -> Path:
    d = tmp_path / "phone"
    d.mkdir()
    jpeg = cv2.imencode(".jpg", astronaut)[1].tobytes()
    (d / "download.jfif").write_bytes(jpeg)  # what browsers on Windows name downloaded JPEGs
    (d / "old.jpe").write_bytes(jpeg)
    cv2.imwrite(str(d / "scan.pgm"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    Image.fromarray(astronaut[:, :, ::-1]).save(d / "meme.gif")
    write_heic(d / "IMG_0001.HEIC", astronaut)
    write_heic(d / "IMG_0002.jpg", astronaut)  # HEIC under a JPEG name, as transfer tools often save them
    (d / "IMG_0003.heic").write_bytes((d / "IMG_0001.HEIC").read_bytes()[:200])  # cut off
    return d


def test_every_format_in_a_folder_is_read_and_its_face_found(phone_folder, tiny_model):
    result = runner.invoke(app, ["classify", str(phone_folder), "--model", str(tiny_model), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    rows = rows_by_name(result.stdout)
    assert set(rows) == {"download.jfif", "old.jpe", "scan.pgm", "meme.gif", "IMG_0001.HEIC", "IMG_0002.jpg", "IMG_0003.heic"}
    for name in ("download.jfif", "old.jpe", "scan.pgm", "meme.gif", "IMG_0001.HEIC", "IMG_0002.jpg"):
        (row,) = rows[name]
        assert row["error"] == "" and row["label"] in LABELS, (name, row)
        # the astronaut's face, wherever it was decoded from (Haar finds it at about 87,31 51x51)
        assert abs(int(row["x"]) - 87) <= 6 and abs(int(row["y"]) - 31) <= 6 and 44 <= int(row["w"]) <= 60, (name, row)
    assert "not a decodable HEIF image" in rows["IMG_0003.heic"][0]["error"]


def test_a_heic_is_turned_upright_once(tmp_path, astronaut):
    upright = astronaut[:, :200]
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # a camera held sideways; orientation 6 turns it back
    write_heic(tmp_path / "turned.heic", stored, exif_orientation=6)
    assert b"irot" in (tmp_path / "turned.heic").read_bytes()  # the turn is in the container and in EXIF, as an iPhone has it
    image = read_image(tmp_path / "turned.heic")
    assert image.shape == upright.shape and np.abs(image.astype(int) - upright).mean() < 4  # HEVC's loss only


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_heif_and_avif_are_turned_by_their_own_rotation_and_mirror(tmp_path, fmt, orientation):
    """Pillow and pillow-heif write an EXIF orientation as the file's irot/imir boxes; OpenCV decodes AVIF
    without them and libheif HEIC with them: each of the eight must come out as Pillow turns it upright."""
    if fmt == "AVIF" and "AVIF" not in Image.registered_extensions().values():
        pytest.skip("this Pillow writes no AVIF")
    base = Image.open(ASTRONAUT).convert("RGB").crop((0, 0, 256, 160))  # not square: a quarter turn shows
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{fmt.lower()}"
    if fmt == "AVIF":
        base.save(path, exif=exif.tobytes(), quality=95)
    else:
        h = pillow_heif.from_pillow(base)
        h.info["exif"] = exif.tobytes()
        h.save(str(path), quality=95)
    assert orientation == 1 or b"irot" in path.read_bytes() or b"imir" in path.read_bytes()
    want = np.asarray(ImageOps.exif_transpose(_with_orientation(base, orientation)))
    got = read_image(path)
    assert got.shape == want.shape and np.abs(got[:, :, ::-1].astype(int) - want).mean() < 4


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    copy = image.copy()
    copy.getexif()[0x0112] = orientation
    return copy


def test_a_broken_meta_box_leaves_the_image_as_stored():
    assert imageheader.bmff_turn(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 20 + b"\x00\x00\x00\x10meta\x00") == (0, None)
    assert imageheader.bmff_turn(b"") == (0, None)


def test_a_heic_over_the_pixel_limit_is_refused_before_decoding(tmp_path, astronaut, monkeypatch):
    write_heic(tmp_path / "big.heic", astronaut)
    monkeypatch.setattr("fer_edge.imageio.MAX_PIXELS", 10_000)
    monkeypatch.setattr(pillow_heif.HeifFile, "__array_interface__", property(lambda self: pytest.fail("decoded")),
                        raising=False)
    with pytest.raises(FerEdgeError, match="256x256 exceeds the 10,000-pixel limit"):
        read_image(tmp_path / "big.heic")


def test_without_pillow_heif_a_heic_is_an_error_row_naming_the_extra(tmp_path, astronaut, tiny_model, monkeypatch):
    write_heic(tmp_path / "IMG_0001.heic", astronaut)
    cv2.imwrite(str(tmp_path / "ok.jpg"), astronaut)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails as if it were not installed
    result = runner.invoke(app, ["classify", str(tmp_path), "--model", str(tiny_model), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    rows = rows_by_name(result.stdout)
    assert rows["ok.jpg"][0]["label"] in LABELS
    assert 'pip install "fer-edge[heif]"' in rows["IMG_0001.heic"][0]["error"]


def test_info_says_whether_heic_photos_can_be_read(tiny_model):
    import json

    result = runner.invoke(app, ["info", "--model", str(tiny_model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["versions"]["pillow-heif"] == pillow_heif.__version__


def test_the_header_gives_the_size_of_heif_avif_and_jpeg_2000(tmp_path, astronaut, monkeypatch):
    """So that a bomb in these formats is refused by its size, in so many words, before it is decoded."""
    image = astronaut[:, :200]  # 200x256: width and height told apart
    write_heic(tmp_path / "a.heic", image)
    Image.fromarray(image[:, :, ::-1]).save(tmp_path / "a.jp2")
    paths = [tmp_path / "a.heic", tmp_path / "a.jp2"]
    if "AVIF" in Image.registered_extensions().values():
        Image.fromarray(image[:, :, ::-1]).save(tmp_path / "a.avif")
        paths.append(tmp_path / "a.avif")
    monkeypatch.setattr("fer_edge.imageio.MAX_PIXELS", 200 * 256 - 1)
    for path in paths:
        assert imageheader.dimensions(path.read_bytes()[: 1 << 16]) == (200, 256), path.name
        with pytest.raises(FerEdgeError, match="200x256 exceeds the 51,199-pixel limit"):
            read_image(path)
