"""`fer-edge serve`: an HTTP API and a live camera page (the serve extra: FastAPI and uvicorn).

pool (recognizer workers behind a bounded queue) -> app (the API, the page, the token, the limits) ->
metrics (Prometheus counters). The command itself is in fer_edge/cli/serve_cmd.py."""
