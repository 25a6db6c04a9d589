"""`fer-edge serve`: declares the options, checks the bind, starts uvicorn (the serve extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.options import DetectorModelOpt, DetectorName, DetectorOpt, Device, DeviceOpt, ModelOpt, ThreadsOpt
from fer_edge.errors import FerEdgeError, UsageError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind (0: any free one, printed).")] = 8000,
    model: ModelOpt = None,
    detector: DetectorOpt = DetectorName.auto,
    detector_model: DetectorModelOpt = None,
    device: DeviceOpt = Device.auto,
    workers: Annotated[int, typer.Option(min=1, help="Recognizer workers (each its own model session and detector).")] = 1,
    threads: ThreadsOpt = 0,
    token: Annotated[Optional[str], typer.Option(envvar="FER_EDGE_TOKEN", help="Bearer token every API call must send (the page takes it as /#token=T). Required off loopback.")] = None,
    max_upload: Annotated[float, typer.Option(min=0.001, help="Largest request body, MB.")] = 20.0,
    queue: Annotated[int, typer.Option(min=1, help="Images that may wait for a worker; beyond it, 503 at once.")] = 32,
    batch: Annotated[int, typer.Option(min=1, help="Queued images a worker takes at once: their faces go to the classifier in one call.")] = 8,
    ssl_certfile: Annotated[Optional[Path], typer.Option(help="TLS certificate: a phone's browser gives a page its camera only over https.")] = None,
    ssl_keyfile: Annotated[Optional[Path], typer.Option(help="TLS private key for --ssl-certfile.")] = None,
) -> None:
    """An HTTP API (POST /v1/classify, /v1/classify/batch; /v1/info, /healthz, /metrics; OpenAPI at /docs) and a live camera page at /."""
    try:
        import uvicorn

        from fer_edge.serve.app import ServeConfig, create_app
        from fer_edge.serve.pool import RecognizerPool
    except ImportError as e:
        raise FerEdgeError(f'fer-edge serve needs the serve extra: pip install "fer-edge[serve]" ({e.name} is missing)') from None
    from fer_edge.facts import gather
    from fer_edge.recognizer import Recognizer, resolve_model

    if host not in LOOPBACK and not token:
        raise UsageError(f"--host {host} opens the server to the network: give a token (--token or FER_EDGE_TOKEN)")
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise UsageError("--ssl-certfile and --ssl-keyfile go together")
    path = resolve_model(model)

    def make() -> Recognizer:
        return Recognizer(path, detector=detector.value, detector_model=detector_model, device=device.value,
                          threads=threads, detect_size=1920)

    pool = RecognizerPool(make, workers=workers, queue_size=queue, batch=batch)
    first = pool.recognizers[0]
    info = gather(first.classifier, path, first.detector, threads)
    app = create_app(pool, info, ServeConfig(token=token, max_upload_mb=max_upload))
    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"model {path} on {first.classifier.providers.describe()}; detector {first.detector.name}; "
               f"{workers} worker(s), queue {queue}", err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", ssl_certfile=ssl_certfile,
                            ssl_keyfile=ssl_keyfile, ws_max_size=int(max_upload * 1024 * 1024))
    server = uvicorn.Server(config)

    def announce() -> None:  # the bound port, once known (--port 0 picks one)
        for s in server.servers:
            for sock in s.sockets:
                bound = sock.getsockname()
                typer.echo(f"serving on {scheme}://{host}:{bound[1]}/ (API docs at /docs)"
                           + ("; token required" if token else ""), err=True)
                return

    import asyncio

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            announce()
        await task

    try:
        asyncio.run(main())
    finally:
        pool.close()
    if not server.started:
        raise FerEdgeError(f"could not serve on {host}:{port} (is the port in use?)")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(guarded(serve))
