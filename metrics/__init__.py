"""The app's Prometheus metrics, served at `GET /metrics` (see docs/operating.md for each metric)."""

from metrics.prometheus import PREFIX, AppMetrics, EngineState, StateCollector, StoreState

__all__ = ["PREFIX", "AppMetrics", "EngineState", "StateCollector", "StoreState"]
