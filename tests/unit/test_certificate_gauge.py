"""victoria_tls_certificate_expiry_seconds counts down to the expiry last read, and goes when the file cannot be."""

import time

from prometheus_client.parser import text_string_to_metric_families

from victoria_sip.adapters.metrics import PrometheusTelemetry


def expiry_samples(telemetry: PrometheusTelemetry) -> dict[str, float]:
    return {s.labels["certificate"]: s.value
            for family in text_string_to_metric_families(telemetry.exposition().decode())
            for s in family.samples if s.name == "victoria_tls_certificate_expiry_seconds"}


def test_the_gauge_counts_down_to_the_expiry_last_read_and_goes_when_the_file_cannot_be_read():
    telemetry = PrometheusTelemetry()
    telemetry.certificate_read("account:desk", None)  # never read: nothing to remove, no series
    assert expiry_samples(telemetry) == {}
    telemetry.certificate_read("listener", time.time() + 10 * 86400)
    telemetry.certificate_read("account:desk", time.time() - 86400)
    first = expiry_samples(telemetry)
    assert 10 * 86400 - 5 < first["listener"] <= 10 * 86400
    assert -86400 - 5 < first["account:desk"] <= -86400, "negative once expired"
    time.sleep(0.05)
    assert expiry_samples(telemetry)["listener"] < first["listener"], "computed at each scrape"
    telemetry.certificate_read("listener", None)
    assert list(expiry_samples(telemetry)) == ["account:desk"]
