"""What ``GET /metrics`` exports in Prometheus' text format (prometheus-client), and the
search latency histogram the search routes feed (who may read it: ``api_monitoring.py``).

Each app has its own ``CollectorRegistry`` (``WebMetrics``, on ``app.state.web``): nothing is
registered in the client's global registry, so many apps can live in one process (the tests
open dozens). The other figures are read at each scrape (``overview.figures``): counts,
times, source kinds and source names, never content.

Exported: ``mailvault_archived_messages`` / ``mailvault_archived_bytes`` by source kind,
``mailvault_failures`` (not settled) by kind, ``mailvault_spool_depth``,
``mailvault_index_lag_messages``, ``mailvault_sync_lag_seconds`` per source,
``mailvault_smtp_accepted_total`` / ``mailvault_smtp_refused_total`` (since serve started),
and ``mailvault_search_seconds`` (histogram, by face: page or api).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.context_managers import Timer
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailvault.usecases.overview import Figures

# Seconds: a search answered from the index takes milliseconds; facets on a large vault more.
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _search_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("mailvault_search_seconds", "Server time of a search (query, count and "
                     "the page's facets), by face.", ["face"], buckets=SEARCH_BUCKETS,
                     registry=registry)


@dataclass
class WebMetrics:
    """One app's metrics: its own registry, holding the search latency histogram."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True))
    search_seconds: Histogram = field(init=False)

    def __post_init__(self) -> None:
        self.search_seconds = _search_histogram(self.registry)

    def timing_search(self, face: str) -> Timer:
        """A context that observes how long the search inside it takes (``face``: 'page'
        or 'api'), failed ones included."""
        return self.search_seconds.labels(face=face).time()

    def exposition(self, figures: Figures) -> bytes:
        """The text format of the registry's metrics and of ``figures``."""
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_FiguresCollector(figures))
        return generate_latest(self.registry) + generate_latest(scrape)


@dataclass(frozen=True, eq=False)
class _FiguresCollector(Collector):
    """One scrape's figures as metric families (hashed by identity, as a registry needs)."""

    figures: Figures

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        messages = GaugeMetricFamily("mailvault_archived_messages", "Messages in the vault "
                                     "with an arrival of this source kind.", labels=["kind"])
        size = GaugeMetricFamily("mailvault_archived_bytes", "Raw bytes of those messages.",
                                 labels=["kind"])
        for kind, (count, raw_bytes) in sorted(f.archived.items()):
            messages.add_metric([kind], count)
            size.add_metric([kind], raw_bytes)
        failures = GaugeMetricFamily("mailvault_failures", "Recorded failures not settled, "
                                     "by kind.", labels=["kind"])
        for kind, count in sorted(f.failures.items()):
            failures.add_metric([kind], count)
        lag = GaugeMetricFamily("mailvault_sync_lag_seconds", "Seconds since the start of the "
                                "source's last good sync.", labels=["source", "kind"])
        for name, kind, seconds in f.sync_lag:
            if seconds is not None:
                lag.add_metric([name, kind], seconds)
        accepted = CounterMetricFamily("mailvault_smtp_accepted", "Messages the running "
                                       "serve accepted, by service.", labels=["service"])
        for service, count in sorted(f.accepted.items()):
            accepted.add_metric([service], count)
        refused = CounterMetricFamily("mailvault_smtp_refused", "Connections, recipients or "
                                      "messages the running serve refused, by reason.",
                                      labels=["reason"])
        for reason, count in sorted(f.refused.items()):
            refused.add_metric([reason], count)
        yield from (messages, size, failures, lag, accepted, refused)
        yield GaugeMetricFamily("mailvault_spool_depth", "Spooled messages waiting for the "
                                "archiver.", value=f.spool_depth)
        yield GaugeMetricFamily("mailvault_index_lag_messages", "Archived messages not yet "
                                "searchable.", value=f.index_behind)
