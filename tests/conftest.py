"""Shared fixtures: a tiny contract-conforming ONNX model built with onnx.helper, and test images."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import ASTRONAUT, fer_data_path, make_tiny_model, train_tiny, yunet_model_path
from synthetic import write_csv


@pytest.fixture(scope="session", autouse=True)
def empty_model_store(tmp_path_factory):
    """Every test starts from an empty fer-edge home, whatever this machine's store holds (a stored YuNet
    would turn --detector auto into YuNet). Tests that fill a store point FER_EDGE_HOME elsewhere."""
    old = os.environ.get("FER_EDGE_HOME")
    os.environ["FER_EDGE_HOME"] = str(tmp_path_factory.mktemp("fer-edge-home"))
    yield
    if old is None:
        os.environ.pop("FER_EDGE_HOME", None)
    else:
        os.environ["FER_EDGE_HOME"] = old


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    img = cv2.imread(str(ASTRONAUT))
    assert img is not None, ASTRONAUT
    return img


@pytest.fixture
def fer_data() -> Path:
    path = fer_data_path()
    if path is None:
        pytest.skip("FER2013 not found: set FER_EDGE_DATA or place fer2013.csv.gz in ../shared/data")
    return path


@pytest.fixture
def yunet_model() -> Path:
    path = yunet_model_path()
    if path is None:
        pytest.skip("no YuNet model in ../shared/models (face_detection_yunet*.onnx)")
    return path


@pytest.fixture
def csv_data(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    return write_csv(tmp_path / "fer.csv")


@pytest.fixture
def trained_run(csv_data, tmp_path) -> Path:
    return train_tiny(csv_data, tmp_path / "run")
