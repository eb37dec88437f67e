"""Prometheus text format (0.0.4) with the contract's names.

prometheus_client's writer names a counter `<name>_total` and adds `<name>_created`; the metric
contract (EmailEngine's names, so its queries work unchanged) has counters without the suffix,
e.g. `webhooks{event="messageNew",status="success"} 234`. So families are adjusted here and
written by this small writer: the contract's counter samples lose `_total`, `_created` samples
go, metrics that have no sample yet still get their HELP/TYPE lines (and 0 when they have no
labels), and imap_connections always shows every state.
"""

from __future__ import annotations

from prometheus_client.utils import floatToGoString

from shared.event_names import EVENTS
from shared.mail.mailbox_channel import OPERATIONS
from shared.metrics import definitions as metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
          "summary": "summary", "unknown": "untyped", "untyped": "untyped"}
CONTRACT = (metrics.thread_starts, metrics.thread_stops, metrics.api_call,
            metrics.imap_connections, metrics.imap_responses, metrics.imap_bytes_sent,
            metrics.imap_bytes_received, metrics.webhooks, metrics.events,
            metrics.webhook_req, metrics.queues_processed)
OWN = (metrics.metric_files_corrupt, metrics.redis_errors, metrics.redis_failing, metrics.scrape_errors,
       metrics.imap_api_requests)
ALWAYS_SHOWN = CONTRACT + OWN
# Counters named as EmailEngine names them, without `_total`; our own counters keep the suffix.
LEGACY_COUNTERS = {m._name for m in CONTRACT if m._type == "counter"}
# Label sets known in advance get a 0 sample, so rate() and alerts see the series from the start.
KNOWN_SERIES = {
    "imap_connections": [{"status": s} for s in metrics.IMAP_STATES],
    "queues_processed": [{"queue": "notify", "status": s} for s in ("completed", "failed")],
    "webhooks": [{"status": s, "event": e} for e in EVENTS for s in ("success", "fail")],
    "events": [{"event": e} for e in EVENTS],
    "imap_responses": [{"response": r, "code": ""} for r in ("OK", "NO", "BAD")],
    "mailpulse_imap_api_requests": [{"op": op} for op in OPERATIONS],
}


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _contract_defaults():
    """HELP/TYPE (and zero samples where the label set is known) of every contract metric."""
    for metric in ALWAYS_SHOWN:
        for family in metric.describe():
            if family.type == "counter" and not metric._labelnames:
                family.add_sample(family.name + "_total", {}, 0.0)
            elif family.type == "gauge" and not metric._labelnames:
                family.add_sample(family.name, {}, 0.0)
            elif family.type == "histogram":
                for bound in list(metrics.WEBHOOK_REQ_BUCKETS) + [float("inf")]:
                    family.add_sample(family.name + "_bucket", {"le": floatToGoString(bound)}, 0.0)
                family.add_sample(family.name + "_count", {}, 0.0)
                family.add_sample(family.name + "_sum", {}, 0.0)
            own_counter = family.type == "counter" and family.name not in LEGACY_COUNTERS
            for labels in KNOWN_SERIES.get(family.name, ()):
                family.add_sample(family.name + ("_total" if own_counter else ""), labels, 0.0)
            yield family


def _adjust(family):
    """Contract names: its counters without `_total`; no `_created` samples."""
    samples = []
    for sample in family.samples:
        name = sample.name
        if name.endswith("_created"):
            continue
        if family.type == "counter" and family.name in LEGACY_COUNTERS and name.endswith("_total"):
            name = name[: -len("_total")]
        samples.append((name, sample.labels, sample.value))
    return samples


def render(families) -> bytes:
    """Write families as text; collected values replace the contract's default samples."""
    merged: dict[str, tuple[str, str, dict]] = {}
    for family in _contract_defaults():
        merged[family.name] = (family.documentation, family.type,
                               {(n, tuple(sorted(ls.items()))): v for n, ls, v in _adjust(family)})
    for family in families:
        doc, mtype, samples = merged.setdefault(family.name, (family.documentation, family.type, {}))
        for name, labels, value in _adjust(family):
            samples[(name, tuple(sorted(labels.items())))] = value
    lines = []
    for name in sorted(merged):
        doc, mtype, samples = merged[name]
        header = name + "_total" if mtype == "counter" and name not in LEGACY_COUNTERS else name
        lines.append(f"# HELP {header} {_escape_help(doc)}")
        lines.append(f"# TYPE {header} {_TYPES.get(mtype, 'untyped')}")
        for (sample_name, labels), value in samples.items():
            if labels:
                text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels)
                lines.append(f"{sample_name}{{{text}}} {floatToGoString(value)}")
            else:
                lines.append(f"{sample_name} {floatToGoString(value)}")
    return ("\n".join(lines) + "\n").encode()
