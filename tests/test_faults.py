"""The fault suite: bench/faults.py, short, on PostgreSQL and Redis.

Real workers (three, killed with SIGKILL twice), two beats, a Redis of the run's own
restarted once, a fake Twilio and a fake ESP that drop connections after taking the
request, answer too late and answer 500 and 429 in bursts. Observers outside
TriggerHub count what reached each recipient.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import ROOT, database_url

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(450),
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql") or not settings.REDIS_URL,
        reason="the fault suite runs on PostgreSQL and Redis (DATABASE_URL and REDIS_URL)",
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to start a Redis of its own"),
]


def test_under_kills_a_redis_restart_and_misbehaving_providers_nothing_is_sent_twice_lost_or_stuck(tmp_path):
    results_file = tmp_path / "faults.json"
    server = settings.DATABASES["default"]  # the server's own database: the bench makes one of its own
    run = subprocess.run(
        [sys.executable, "bench/faults.py", "--count", "200", "--json", str(results_file)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(server)},
        capture_output=True,
        text=True,
        timeout=400,
    )
    print(run.stdout[-3000:], run.stderr[-3000:])
    results = json.loads(results_file.read_text())

    assert results["drained"], "messages still pending or sending after the run"
    assert len(results["events"]) == 3 and not any("not reached" in event for event in results["events"])
    for channel, row in results["rows"].items():
        assert row["duplicates"] == 0, f"{channel}: a recipient got a message twice"
        assert row["lost"] == 0, f"{channel}: a message never reached the provider and is not shown as unknown"
        assert row["stuck"] == 0, f"{channel}: messages left pending or sending"
        assert row["unknown"] <= row["cut_off"], f"{channel}: more unknown than requests cut off in flight"
        assert row["exactly_once"] + row["unknown"] - row["unknown_seen"] == row["messages"]
    assert run.returncode == 0
