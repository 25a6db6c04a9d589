"""`fer-edge serve`, started for real on 127.0.0.1 and called over HTTP: good photos, every bad input, a token
server, concurrent clients and overload, and the live page in a real headless Chromium with a fake camera."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason='fer-edge serve needs the serve extra: pip install "fer-edge[serve]"')

from helpers import ASTRONAUT, astronaut_face, group_photo  # noqa: E402

PHOTO = ASTRONAUT.read_bytes()


class Server:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "serve", "--port", "0", "--device", "cpu", *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        deadline = time.time() + 120
        self.url = None
        while time.time() < deadline and self.url is None:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"the server did not start: exit {self.proc.returncode}")
            m = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
            if m:
                self.url = m.group(1)
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the pipe drained

    def call(self, path: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def send_large(self, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
        """POST a body the server refuses part-way: it answers and closes while the client still writes, as a
        server must with an oversized upload; the answer is read after the broken pipe."""
        import http.client

        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.putrequest("POST", path)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            for i in range(0, len(body), 65536):
                conn.send(body[i : i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        return resp.status, resp.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in files:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's signature), with no real pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


@pytest.fixture(scope="module")
def server():
    s = Server("--max-upload", "1", "--workers", "2")
    yield s
    s.stop()


def jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img)[1].tobytes()


def test_a_photo_gets_the_same_faces_as_classify(server):
    status, _, body = server.call("/v1/classify", PHOTO, {"Content-Type": "image/jpeg"})
    assert status == 200
    (face,) = json.loads(body)["faces"]
    assert face["label"] == "happy" and face["face"] == 0 and abs(face["x"] - 87) <= 1
    assert set(face) == {"face", "x", "y", "w", "h", "det_score", "label", "confidence", "angry", "disgust", "fear",
                         "happy", "sad", "surprise", "neutral"}
    form, headers = multipart([("a.jpg", PHOTO)])
    status, _, body = server.call("/v1/classify", form, headers)
    assert status == 200 and json.loads(body)["faces"][0]["label"] == "happy"


def test_options_crop_min_face_and_annotate(server, astronaut):
    crop = cv2.resize(cv2.cvtColor(astronaut_face(astronaut), cv2.COLOR_BGR2GRAY), (48, 48))
    status, _, body = server.call("/v1/classify?detect=false", cv2.imencode(".png", crop)[1].tobytes(),
                                  {"Content-Type": "image/png"})
    assert status == 200 and json.loads(body)["faces"][0]["w"] == 48
    status, _, body = server.call("/v1/classify?min_face=200", PHOTO, {"Content-Type": "image/jpeg"})
    assert status == 200 and json.loads(body)["faces"] == []
    status, headers, body = server.call("/v1/classify?annotate=true", PHOTO, {"Content-Type": "image/jpeg"})
    assert status == 200 and headers["content-type"] == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == astronaut.shape and np.abs(drawn.astype(int) - astronaut.astype(int)).mean() > 1


def test_a_batch_answers_in_order_with_an_error_entry_for_a_bad_image(server, astronaut):
    group = jpeg(group_photo(astronaut))
    form, headers = multipart([("one.jpg", PHOTO), ("bad.jpg", b"not an image"), ("group.jpg", group)])
    status, _, body = server.call("/v1/classify/batch", form, headers)
    assert status == 200
    one, bad, three = json.loads(body)["results"]
    assert one["name"] == "one.jpg" and len(one["faces"]) == 1
    assert bad["status"] == 422 and "not a decodable image" in bad["error"]
    assert three["name"] == "group.jpg" and len(three["faces"]) == 3


@pytest.mark.parametrize("case, status, message", [
    ("not an image", 422, "not a decodable image"),
    ("bomb", 413, "exceeds the"),
    ("too large", 413, "over the 1,048,576-byte limit"),
    ("text", 415, "unsupported Content-Type text/plain"),
    ("empty", 400, "no image"),
    ("form without a file", 400, "no file part"),
])
def test_every_bad_input_is_one_json_error_with_its_status(server, case, status, message):
    body, headers = {
        "not an image": (b"\xff\xd8 this is not a jpeg", {"Content-Type": "image/jpeg"}),
        "bomb": (png_claiming(100_000, 100_000), {"Content-Type": "image/png"}),
        "too large": (b"\0" * (1024 * 1024 + 10), {"Content-Type": "application/octet-stream"}),
        "text": (b"hello", {"Content-Type": "text/plain"}),
        "empty": (b"", {"Content-Type": "image/jpeg"}),
        "form without a file": (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
                                {"Content-Type": "multipart/form-data; boundary=x"}),
    }[case]
    if case == "too large":
        got, reply = server.send_large("/v1/classify", body, headers)
    else:
        got, _, reply = server.call("/v1/classify", body, headers, method="POST")
    assert got == status, reply
    assert message in json.loads(reply)["error"]
    assert server.call("/healthz")[0] == 200  # and the server is still there


def test_info_metrics_and_the_openapi_page(server):
    assert server.call("/v1/classify", PHOTO, {"Content-Type": "image/jpeg"})[0] == 200
    status, _, body = server.call("/v1/info")
    info = json.loads(body)
    assert status == 200 and info["model"]["metadata"]["labels"] and info["providers"]["runs_on"] == "CPU"
    status, headers, body = server.call("/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in ("fer_edge_requests_total", "fer_edge_errors_total", "fer_edge_request_seconds_bucket",
                 "fer_edge_faces_total", "fer_edge_queue_depth"):
        assert name in text, name
    assert re.search(r'fer_edge_requests_total\{endpoint="/v1/classify",status="200"\} [1-9]', text)
    status, _, body = server.call("/openapi.json")
    assert status == 200 and "/v1/classify/batch" in json.loads(body)["paths"]


def test_concurrent_clients_all_get_their_own_answers(server, astronaut):
    photos = [jpeg(group_photo(astronaut, positions=tuple((20 + 270 * i, 40) for i in range(n)))) for n in (1, 2, 3)]
    answers: list[tuple[int, int, int]] = []

    def client(k: int) -> None:
        for i in range(4):
            n = (k + i) % 3
            status, _, body = server.call("/v1/classify", photos[n], {"Content-Type": "image/jpeg"})
            answers.append((status, n + 1, len(json.loads(body).get("faces", [])) if status == 200 else -1))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 48
    assert all(status in (200, 503) for status, _, _ in answers)
    assert all(found == expected for status, expected, found in answers if status == 200)
    assert sum(status == 200 for status, _, _ in answers) >= 24


def test_a_full_queue_answers_503_at_once_with_retry_after(astronaut):
    s = Server("--queue", "1", "--workers", "1", "--batch", "1")
    try:
        big = jpeg(cv2.resize(group_photo(astronaut), (3200, 1040)))
        results: list[tuple[int, dict]] = []

        def client() -> None:
            status, headers, _ = s.call("/v1/classify", big, {"Content-Type": "image/jpeg"})
            results.append((status, headers))

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [h for status, h in results if status == 503]
        assert refused and len(refused) < 16, [status for status, _ in results]
        assert all(h.get("retry-after") == "1" for h in refused)
    finally:
        s.stop()


def test_a_token_server_refuses_calls_without_the_token():
    s = Server("--token", "s3cret")
    try:
        status, headers, body = s.call("/v1/classify", PHOTO, {"Content-Type": "image/jpeg"})
        assert status == 401 and headers.get("www-authenticate") == "Bearer" and "token" in json.loads(body)["error"]
        assert s.call("/v1/info", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert s.call("/metrics")[0] == 401
        assert s.call("/healthz")[0] == 200  # liveness stays open to probes
        status, _, body = s.call("/v1/classify", PHOTO, {"Content-Type": "image/jpeg", "Authorization": "Bearer s3cret"})
        assert status == 200 and json.loads(body)["faces"]
    finally:
        s.stop()


def test_off_loopback_without_a_token_refuses_to_start_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != "FER_EDGE_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "fer_edge", "serve", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "give a token" in proc.stderr


def test_the_live_page_draws_boxes_and_labels_from_a_fake_camera(server, astronaut):
    from browser import Browser, find_chromium, write_y4m

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium: apt-get install chromium (.ci/run installs it)")
    pytest.importorskip("websockets")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:  # Chromium's helpers can still be writing its profile when it exits
        frame = np.full((480, 640, 3), 90, np.uint8)
        frame[90:390, 170:470] = cv2.resize(astronaut_face(astronaut), (300, 300))
        camera = write_y4m(Path(tmp) / "camera.y4m", frame)
        browser = Browser(chromium, Path(tmp) / "profile", camera)
        try:
            browser.open(server.url + "/")
            drawn = browser.wait_for("Number(document.body.dataset.drawn) >= 3 && document.body.dataset.label", timeout=90)
            state = browser.evaluate("JSON.stringify(document.body.dataset)")
            assert drawn == "happy", state
            assert browser.evaluate("document.getElementById('fps').textContent").endswith("ms"), state
            # the overlay really has the box: coloured pixels where the face is
            shot = browser.screenshot(Path(tmp) / "page.png")
            assert cv2.imread(str(shot)) is not None
            target = os.environ.get("FER_EDGE_PAGE_SCREENSHOT")  # set to refresh docs/img/serve-page.png
            if target:
                Path(target).write_bytes(shot.read_bytes())
            painted = browser.evaluate("""(() => { const c = document.getElementById('overlay');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()""")
            assert painted > 500, state
        finally:
            browser.close()


def test_the_page_says_so_when_the_camera_is_refused(server):
    from browser import Browser, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium: apt-get install chromium (.ci/run installs it)")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:  # Chromium's helpers can still be writing its profile when it exits
        browser = Browser(chromium, Path(tmp) / "profile", camera=None)  # no fake camera, no permission
        try:
            browser.open(server.url + "/")
            state = browser.wait_for("document.body.dataset.state === 'error' && document.getElementById('status').textContent", timeout=60)
            assert state and "camera" in state.lower()
        finally:
            browser.close()


def test_a_worker_classifies_the_faces_of_queued_images_in_one_call(astronaut):
    """The pool's batching, without HTTP: images queued together reach the classifier as one call holding all
    their faces, and each image gets its own faces back."""
    from fer_edge.recognizer import Recognizer
    from fer_edge.serve.pool import RecognizerPool

    calls: list[int] = []
    gate = threading.Event()

    def make() -> Recognizer:
        rec = Recognizer(device="cpu", detector="haar")
        predict = rec.classifier.predict_probs

        def counted(crops, *args, **kwargs):
            gate.wait(30)  # hold the worker until every image is queued
            calls.append(len(crops))
            return predict(crops, *args, **kwargs)

        rec.classifier.predict_probs = counted
        return rec

    pool = RecognizerPool(make, workers=1, queue_size=16, batch=8)
    try:
        photos = [jpeg(group_photo(astronaut, positions=tuple((20 + 270 * i, 40) for i in range(n)))) for n in (1, 2, 3)]
        blocker = pool.submit(photos[0])  # the worker takes this one alone and waits at the classifier
        time.sleep(0.5)
        futures = [pool.submit(p) for p in photos + photos]
        gate.set()
        assert len(blocker.result(60)[1]) == 1
        assert [len(f.result(60)[1]) for f in futures] == [1, 2, 3, 1, 2, 3]
        assert calls == [1, 12], calls  # six images, twelve faces, one classifier call
    finally:
        pool.close()
