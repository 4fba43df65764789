"""`/.metrics`: Prometheus' text format, with counters that move as requests are made."""

from __future__ import annotations

import re

import requests


def scrape(base_url: str, admin_token: str = "owner") -> dict[str, float]:
    """The samples of a scrape, keyed by name and labels as written. `/.metrics` needs the
    admin credential: `owner` on an emulator-mode server, else the server's admin token."""
    response = requests.get(f"{base_url}/.metrics", headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_counters_move(hearth_server, raw):
    """Requests by method and status, write latency, denials and stream counts all change."""
    base = hearth_server.base_url
    before = scrape(base)
    raw.request("PUT", "m/a", json=1)
    raw.request("GET", "m/a")
    raw.request("GET", "m/a", params={"foo": "1"})  # 400
    after = scrape(base)

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert delta('hearth_http_requests_total{method="PUT",status="200"}') >= 1
    assert delta('hearth_http_requests_total{method="GET",status="200"}') >= 1
    assert delta('hearth_http_requests_total{method="GET",status="400"}') >= 1
    assert delta("hearth_write_duration_seconds_count") >= 1
    assert delta("hearth_http_request_duration_seconds_count") >= 3
    assert after["hearth_namespaces"] >= 1
    assert any(re.match(r'hearth_write_duration_seconds_bucket\{le="[^"]+"\}', name) for name in after)
    # fsync=always: the write was synced, and the log on disk grew.
    assert delta("hearth_fsync_duration_seconds_count") >= 1
    assert delta("hearth_log_bytes") > 0
    assert "hearth_snapshot_bytes" in after


def test_streams_and_denials_are_counted(hearth_launcher, tmp_path, raw):
    """A stream that opens and receives an event, and a read the rules refuse."""
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": {"s": {".read": true, ".write": true}}}')
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=False, extra_args=["--rules", str(rules)],
                             log_name="metrics")
    base = server.base_url
    admin = (tmp_path / "data" / "admin-token").read_text().strip()
    session = requests.Session()
    session.trust_env = False
    stream = session.get(f"{base}/s.json", headers={"Accept": "text/event-stream"}, stream=True, timeout=10)
    lines = stream.iter_lines(decode_unicode=True)
    assert next(line for line in lines if line.startswith("data:"))
    session.put(f"{base}/s/x.json", json=1)
    assert next(line for line in lines if line.startswith("data:")) == 'data: {"path":"/x","data":1}'
    samples = scrape(base, admin)
    assert samples["hearth_streams_open"] == 1
    assert samples["hearth_streams_opened_total"] >= 1
    assert samples["hearth_stream_events_total"] >= 1
    stream.close()
    assert requests.get(f"{base}/secret.json", timeout=10).status_code == 401
    assert scrape(base, admin)["hearth_rule_denials_total"] >= 1
