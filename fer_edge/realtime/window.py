"""The OpenCV window of `fer-edge webcam`, and its keys."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Window:
    """The OpenCV window and its keys: q/Esc quit, space pause, s snapshot, r record."""

    def __init__(self, name: str = "fer-edge"):
        if not display_available():
            raise FerEdgeError("no display found (DISPLAY is unset): run with --no-display, and --output or --jsonl to keep results")
        self.name = name
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self.shown = False

    def show(self, image: np.ndarray) -> str | None:
        """Show a frame; return 'quit', 'pause', 'snapshot', 'record', 'closed' or None."""
        if self.shown and cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) < 1:
            return "closed"
        cv2.imshow(self.name, image)
        self.shown = True
        key = cv2.waitKey(1) & 0xFF
        return {ord("q"): "quit", 27: "quit", ord(" "): "pause", ord("s"): "snapshot", ord("r"): "record"}.get(key)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.name)
            cv2.waitKey(1)
        except cv2.error:
            pass
