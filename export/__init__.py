"""ONNX export (installed as fer_edge.export; needs the `train` extra)."""
