"""fer-edge: facial expression recognition for the edge.

The runtime (this package, minus `fer_edge.train` and `fer_edge.export`) never imports torch.
"""

__version__ = "0.1.0"
