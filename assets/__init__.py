"""The shipped model and its card (installed as fer_edge.assets)."""
