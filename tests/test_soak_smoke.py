"""CI smoke of ``bench/soak.py``: a short open-loop run against a federator over three verifier
processes, with one verifier SIGKILLed and restarted on its port during the run.

What it must show (issue 6, item 4): every scheduled request is answered 200 with a status
(degraded or not), no transport error or timeout; the kill is felt (the killed backend's votes
are not ok for a while) and the restarted verifier is used again (its votes are ok afterwards:
the breaker's cool-down is shortened to 2 s for that); every process is stopped at the end.
The full 5-minute run and its figures are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from process_helpers import alive

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
RATE, DURATION = 10, 15  # requests per second (light enough for a busy CI machine), seconds


def run_soak(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the script; on a timeout SIGTERM it (it then stops its servers) before giving up."""
    proc = subprocess.Popen([sys.executable, str(SOAK), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=SOAK.parents[1], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"soak did not finish in {timeout} s: {out[-3000:]} {err[-3000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_verifier_killed_and_restarted_under_load_loses_no_request(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = run_soak(["--quick", "--rate", str(RATE), "--duration", str(DURATION), "--warmup", "2",
                     "--kill-restart", "globex@4", "--restart-after", "2", "--breaker-cooldown", "2",
                     "--json", str(out)])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    r = json.loads(out.read_text())

    # No lost request: each scheduled one answered 200 with a status, nothing else.
    assert r["scheduled"] == RATE * DURATION
    assert r["answered"] == r["finished"] == r["scheduled"]
    assert (r["lost"], r["errors"], r["problems"]) == (0, 0, [])
    assert all(k.startswith("200 ") and k != "200 not-json" for k in r["statuses"]), r["statuses"]

    # The kill happened, the verifier came back on its own port, and the federator used it again.
    events = {e["event"]: e for e in r["events"]}
    assert events["killed"]["process"] == "globex"
    assert events["restarted"]["pid"] != events["killed"]["pid"]
    globex = next(p for p in r["processes"] if p["process"] == "globex")
    assert globex["restarted"] and globex["pid"] == events["restarted"]["pid"]
    assert events["restarted"]["port"] == events["killed"]["port"]
    window = r["killed_not_ok_window"]
    assert window is not None and window["not_ok"] > 0, r["votes"]
    assert window["first_s"] >= 3.5  # nothing failed before the kill
    assert window["ok_after"] > 0, r["votes"]  # back in service after the restart
    assert r["votes"]["acme"] == {"ok": r["scheduled"]} and r["votes"]["initech"] == {"ok": r["scheduled"]}

    # Resident memory was measured for every process, and every process is gone.
    assert {p["process"] for p in r["processes"]} == {"acme", "globex", "initech", "federator"}
    assert all(p["rss_start_kib"] and p["rss_end_kib"] for p in r["processes"])
    assert r["left_alive"] == []
    pids = [p["pid"] for p in r["processes"]] + [e["pid"] for e in r["events"] if "pid" in e]
    assert not [pid for pid in pids if alive(pid)]
