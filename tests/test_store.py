"""The model store and --detector auto. Downloads come from a local HTTP server on 127.0.0.1 serving the
shared YuNet file, with the test's own pin: no test reaches the internet."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fer_edge import store
from fer_edge.cli.app import app
from fer_edge.errors import FerEdgeError

runner = CliRunner()


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    cut_at: int | None = None  # send the full Content-Length, then hang up after this many bytes

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        body = self.payload if self.cut_at is None else self.payload[: self.cut_at]
        self.wfile.write(body)
        self.wfile.flush()
        if self.cut_at is not None:
            self.connection.close()

    def log_message(self, *args):
        pass


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FER_EDGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def served(yunet_model):
    """(url, pin) of a server on 127.0.0.1 that serves the shared YuNet file; `cut` makes it hang up halfway."""
    data = yunet_model.read_bytes()
    handler = type("Handler", (_Handler,), {"payload": data, "cut_at": None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pin = store.Pin("face_detection_yunet_test.onnx", len(data), hashlib.sha256(data).hexdigest(),
                    f"http://127.0.0.1:{server.server_address[1]}/yunet.onnx")
    yield pin, handler
    server.shutdown()


def leftovers(home: Path) -> list[str]:
    folder = home / "detectors"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_pull_verifies_and_stores_atomically(home, served, monkeypatch):
    pin, _ = served
    monkeypatch.setitem(store.KNOWN, "yunet", pin)
    result = runner.invoke(app, ["models", "pull", "yunet"])
    assert result.exit_code == 0, result.output
    assert leftovers(home) == [pin.filename] and store.stored("yunet") == home / "detectors" / pin.filename
    entry = store.read_manifest()["yunet"]
    assert entry["sha256"] == pin.sha256 and entry["size"] == pin.size and entry["source"] == pin.url
    listing = runner.invoke(app, ["models", "list"])
    assert listing.exit_code == 0 and pin.sha256[:16] in listing.stdout and "classifier (shipped)" in listing.stdout


def test_a_mirror_is_held_to_the_pin(home, served, monkeypatch):
    pin, _ = served
    monkeypatch.setitem(store.KNOWN, "yunet", store.Pin(pin.filename, pin.size, "0" * 64, "http://127.0.0.1:9/nowhere"))
    result = runner.invoke(app, ["models", "pull", "yunet", "--url", pin.url])  # reachable mirror, other pin
    assert result.exit_code == 1 and "checksum mismatch" in result.stderr and "nothing was kept" in result.stderr
    assert "fer-edge models add yunet FILE" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert leftovers(home) == [] and store.read_manifest() == {}


def test_a_connection_dropped_halfway_leaves_nothing(home, served):
    pin, handler = served
    handler.cut_at = pin.size // 2
    with pytest.raises(FerEdgeError, match="interrupted.*nothing was kept"):
        store.pull("yunet", pin=pin)
    assert leftovers(home) == [] and store.stored("yunet") is None


def test_an_unreachable_host_is_one_clear_line(home):
    pin = store.Pin("x.onnx", 10, "0" * 64, "http://127.0.0.1:9/yunet.onnx")  # nothing listens on port 9
    with pytest.raises(FerEdgeError, match="cannot reach the server.*fer-edge models add yunet FILE"):
        store.pull("yunet", pin=pin, timeout=5)
    assert leftovers(home) == []


def test_add_list_remove_and_auto_follows_the_store(home, yunet_model, tiny_model, capfd):
    from fer_edge.recognizer import Recognizer

    assert Recognizer(tiny_model, device="cpu").detector.name == "haar"
    bad = runner.invoke(app, ["models", "add", "yunet", str(tiny_model)])  # an ONNX file, but not YuNet
    assert bad.exit_code == 1 and "YuNet" in bad.stderr and store.stored("yunet") is None
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "[ERROR" not in capfd.readouterr().err  # OpenCV's own log lines, written straight to fd 2, stay quiet
    result = runner.invoke(app, ["models", "add", "yunet", str(yunet_model)])
    assert result.exit_code == 0, result.output
    assert store.read_manifest()["yunet"]["sha256"] == hashlib.sha256(yunet_model.read_bytes()).hexdigest()
    rec = Recognizer(tiny_model, device="cpu")
    assert rec.detector.name == "yunet" and rec.detector.why == "from the model store"
    classify = runner.invoke(app, ["classify", str(Path(__file__).parent / "data"), "--model", str(tiny_model), "--device", "cpu"])
    assert classify.exit_code == 0 and "detector yunet on onnxruntime (from the model store)" in " ".join(classify.stderr.split())
    forced = runner.invoke(app, ["classify", str(Path(__file__).parent / "data"), "--model", str(tiny_model), "--device", "cpu",
                                 "--detector", "haar"])
    assert "detector haar (asked for)" in " ".join(forced.stderr.split())
    gone = runner.invoke(app, ["models", "remove", "yunet"])
    assert gone.exit_code == 0 and leftovers(home) == [] and store.stored("yunet") is None
    assert runner.invoke(app, ["models", "remove", "yunet"]).exit_code == 2


def test_auto_without_a_store_says_how_to_get_yunet(home, tiny_model, yunet_model):
    result = runner.invoke(app, ["classify", str(Path(__file__).parent / "data"), "--model", str(tiny_model), "--device", "cpu"])
    assert result.exit_code == 0
    assert "detector haar (fer-edge models pull yunet finds turned and small faces)" in " ".join(result.stderr.split())
    given = runner.invoke(app, ["classify", str(Path(__file__).parent / "data"), "--model", str(tiny_model), "--device", "cpu",
                                "--detector-model", str(yunet_model)])
    assert "detector yunet on onnxruntime (--detector-model given)" in " ".join(given.stderr.split())
    asked = runner.invoke(app, ["classify", str(Path(__file__).parent / "data"), "--model", str(tiny_model), "--detector", "yunet"])
    assert asked.exit_code == 2 and "fer-edge models pull yunet" in asked.stderr


def test_one_registry_names_every_model_and_everything_reads_it():
    from fer_edge import registry
    from fer_edge.cli.app import app
    from fer_edge.recognizer import SHIPPED_MODELS, shipped_model_path
    from typer.testing import CliRunner

    assert set(registry.classifiers()) == set(SHIPPED_MODELS) == {"default", "fast"}
    assert set(registry.detectors()) == set(store.KNOWN) == {"yunet"}
    assert all(shipped_model_path(name).is_file() for name in registry.classifiers())
    assert all(m.pin is not None and m.pin.size > 0 for m in registry.detectors().values())
    listed = CliRunner().invoke(app, ["models", "list"], terminal_width=200)
    assert listed.exit_code == 0 and all(name in listed.output for name in registry.MODELS)
    from fer_edge.cli.options import ModelOpt

    model_help = ModelOpt.__metadata__[0].help
    assert all(f"{name} ({m.about})" in model_help for name, m in registry.classifiers().items())
