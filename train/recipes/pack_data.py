"""Pack FER2013 into lossless WebP mosaics (about 59 MB, against 87 MB gzipped CSV), and unpack them to the
trainer's .npz cache format, bit for bit. For moving the data to a machine with a transfer limit (a lent GPU
box takes at most 64 MiB of working tree); the .npz keeps the CSV's sha256, so runs record the same data hash.

    python train/recipes/pack_data.py pack ../shared/data/fer2013.csv.gz .carry/
    python train/recipes/pack_data.py unpack .carry/ /tmp/fer.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from fer_edge.train.data import Split, load_dataset, save_npz

PER_ROW = 100


def pack(csv_path: Path, out_dir: Path) -> None:
    ds = load_dataset(csv_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, np.ndarray | str | int] = {"source_sha256": ds.sha256}
    for name, s in ds.splits.items():
        n = len(s)
        rows = -(-n // PER_ROW)
        x = np.concatenate([s.x, np.zeros((rows * PER_ROW - n, 48, 48), np.uint8)])
        mosaic = x.reshape(rows, PER_ROW, 48, 48).transpose(0, 2, 1, 3).reshape(rows * 48, PER_ROW * 48)
        ok, buf = cv2.imencode(".webp", mosaic, [cv2.IMWRITE_WEBP_QUALITY, 101])  # >100: lossless
        assert ok
        (out_dir / f"{name}.webp").write_bytes(buf.tobytes())
        meta[f"y_{name}"], meta[f"n_{name}"] = s.y, n
    np.savez(out_dir / "meta.npz", **meta)


def unpack(in_dir: Path, npz: Path) -> None:
    meta = np.load(in_dir / "meta.npz")
    splits = {}
    for webp in sorted(in_dir.glob("*.webp")):
        name = webp.stem
        mosaic = cv2.imread(str(webp), cv2.IMREAD_GRAYSCALE)
        rows = mosaic.shape[0] // 48
        x = mosaic.reshape(rows, 48, PER_ROW, 48).transpose(0, 2, 1, 3).reshape(-1, 48, 48)[: int(meta[f"n_{name}"])]
        splits[name] = Split(np.ascontiguousarray(x), meta[f"y_{name}"].astype(np.int64))
    save_npz(npz, splits, str(meta["source_sha256"]))
    print("unpacked", {k: len(v) for k, v in splits.items()}, "->", npz)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(Path(sys.argv[2]), Path(sys.argv[3]))
