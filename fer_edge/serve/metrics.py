"""The server's counters in Prometheus's text format (GET /metrics), one registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fer_edge_requests", "Requests answered, by endpoint and status code.",
                                ["endpoint", "status"], registry=self.registry)
        self.errors = Counter("fer_edge_errors", "Requests refused or failed, by kind.", ["kind"], registry=self.registry)
        self.latency = Histogram("fer_edge_request_seconds", "Time to answer a request, by endpoint.", ["endpoint"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.faces = Counter("fer_edge_faces", "Faces classified.", registry=self.registry)
        self.images = Counter("fer_edge_images", "Images classified (requests, batch items, stream frames).",
                              registry=self.registry)
        depth = Gauge("fer_edge_queue_depth", "Images waiting for a recognizer worker.", registry=self.registry)
        depth.set_function(queue_depth)

    def text(self) -> bytes:
        return generate_latest(self.registry)
