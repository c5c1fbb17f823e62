"""Running and querying a real Prometheus."""

from reliability.prometheus.server import LocalPrometheus, ScrapeTarget

__all__ = ["LocalPrometheus", "ScrapeTarget"]
