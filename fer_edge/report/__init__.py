"""Pictures of a run: emotion timelines per track (webcam records), label counts and confidence (classify
output), training curves (run folders). records -> figures -> publish (one PNG, or one self-contained HTML).

Drawing needs matplotlib (`pip install "fer-edge[report]"`; the train extra has it too); nothing here
imports torch.
"""

from __future__ import annotations
