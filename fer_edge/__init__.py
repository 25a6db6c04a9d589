"""fer-edge: facial expression recognition for the edge.

The runtime (this package, minus `fer_edge.train` and `fer_edge.export`) never imports torch.

    from fer_edge import Recognizer
    faces = Recognizer().predict(image)  # [Face(box, det_score, label, confidence, probs)]
"""

__version__ = "0.1.0"

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
