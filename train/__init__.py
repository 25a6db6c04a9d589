"""Training side of fer-edge (installed as fer_edge.train; needs the `train` extra)."""
