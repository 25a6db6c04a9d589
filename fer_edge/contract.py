"""The model contract, written down once.

An fer-edge model is an ONNX file that:
  * takes `faces`: uint8 [N, 48, 48] grayscale crops (N dynamic); preprocessing happens inside the graph;
  * returns `probs`: float32 [N, 7] probabilities in LABELS order;
  * describes itself in `metadata_props` (keys below, values are strings; JSON where structured).

The runtime also accepts float32 inputs and [N, 1, 48, 48] layouts when the metadata says how to
normalise, and logits when the metadata says so, so that models exported elsewhere can be adapted.
"""

from __future__ import annotations

# FER2013's class order (emotion column 0..6). Defined here only; it then travels inside
# checkpoints and ONNX metadata.
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

INPUT_SIZE = 48
INPUT_NAME = "faces"
OUTPUT_NAME = "probs"
CONTRACT_VERSION = "1"

# metadata_props keys
META_CONTRACT = "fer_edge.contract"
META_LABELS = "labels"  # JSON list, index order
META_INPUT = "input"  # JSON {"name", "layout", "size", "dtype", "color"}
META_PREPROCESS = "preprocessing"  # JSON {"in_graph": bool, "scale", "mean", "std"}
META_OUTPUT = "output"  # "probabilities" or "logits"

# Normalisation the trainer uses (and bakes into exported graphs): x = (pixel / 255 - MEAN) / STD.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25

# Synonyms accepted for class names in image-folder datasets and foreign label lists.
LABEL_SYNONYMS = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}


def canonical_label(name: str) -> str | None:
    """Map a class name (any case, common synonyms) to one of LABELS, or None."""
    return LABEL_SYNONYMS.get(name.strip().lower())
