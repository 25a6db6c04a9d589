"""fer-edge: facial expression recognition for the edge.

The runtime (this package, minus `fer_edge.train` and `fer_edge.export`) never imports torch.

    from fer_edge import Recognizer
    faces = Recognizer().predict(image)  # [Face(box, det_score, label, confidence, probs)]
"""

import os as _os

__version__ = "0.5.0"

# Refuse images above this many pixels before decoding (a decompression bomb, or a 1-gigapixel scan).
# 100 MP covers every camera photo; override with FER_EDGE_MAX_PIXELS. OpenCV enforces its own copy of the
# limit while decoding, but reads it once, when cv2 is first imported: so it is set here, before any of
# fer-edge's modules imports cv2. (imageio also reads each file's header and refuses before decoding.)
MAX_PIXELS = int(_os.environ.get("FER_EDGE_MAX_PIXELS", 100_000_000))
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

# Loaded on first use, so that `import fer_edge` (and `fer-edge --help`) does not start onnxruntime.
_LAZY = {
    "Recognizer": "fer_edge.recognizer",
    "Face": "fer_edge.recognizer",
    "ExpressionClassifier": "fer_edge.classifier",
    "LABELS": "fer_edge.contract",
    "FerEdgeError": "fer_edge.errors",
    "classify_files": "fer_edge.batch",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fer_edge' has no attribute {name!r}")
