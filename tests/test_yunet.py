"""YuNet on onnxruntime (fer_edge/yunet.py) answers as cv2.FaceDetectorYN does: the same faces, boxes,
landmarks and scores, in the same order, on the same images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge.detect import YuNetDetector, make_detector
from fer_edge.yunet import YuNetSession, open_session
from helpers import group_photo


def _images(astronaut: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    crowd = group_photo(astronaut, positions=((20, 40), (200, 60), (380, 30), (560, 50)))  # overlapping: NMS decides
    small_faces = cv2.resize(group_photo(astronaut), (400, 130), interpolation=cv2.INTER_AREA)
    noisy = np.clip(astronaut.astype(np.int16) + rng.normal(0, 25, astronaut.shape), 0, 255).astype(np.uint8)
    odd = cv2.resize(astronaut, (301, 197))  # sides that are not multiples of 32: padded
    return [astronaut, crowd, small_faces, noisy, odd, np.full((240, 320, 3), 127, np.uint8),
            rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)]


def test_onnxruntime_yunet_gives_opencvs_answers(astronaut, yunet_model):
    session = YuNetSession(yunet_model)
    found = 0
    for image in _images(astronaut):
        h, w = image.shape[:2]
        net = cv2.FaceDetectorYN.create(str(yunet_model), "", (w, h), 0.6, 0.3, 5000)
        expected = net.detect(image)[1]
        got = session.detect(image)
        if expected is None:
            assert got is None
            continue
        assert got is not None and got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-3)  # the two runtimes' float sums differ in the last bits
        found += len(expected)
    assert found >= 8  # the astronaut, four crowded copies (some suppressed or not), three small ones...


def test_the_detector_runs_yunet_on_onnxruntime_and_maps_boxes_back(astronaut, yunet_model):
    det = make_detector("yunet", yunet_model)
    assert det.runs_on == "onnxruntime"
    big = cv2.resize(group_photo(astronaut), (1600, 520), interpolation=cv2.INTER_CUBIC)  # detected at 640, mapped back
    assert sorted(d.x // 530 for d in det.detect(big)) == [0, 1, 2]


def test_a_file_in_another_layout_is_left_to_opencv(tmp_path, tiny_model):
    assert open_session(tiny_model) is None  # loads in onnxruntime, but has not YuNet's outputs
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert open_session(tmp_path / "junk.onnx") is None
    with pytest.raises(Exception, match="OpenCV cannot load it as a YuNet face detector"):
        YuNetDetector(tmp_path / "junk.onnx")
