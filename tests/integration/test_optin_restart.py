"""A keyword's path survives the gateway going down (issue 11): ``gateway run`` as a real
process against ``gateway sim`` in its own, the handset's answer arrives while the gateway is
stopped, waits on the SIM, and is handled when the gateway comes back: the field is set and the
path goes on to its end."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from gateway.control import ControlError, request

from .harness import SimProcess, poll, read_rows, spawn_gateway

CONFIG = """\
data_dir: {data_dir}
default_region: US
web: {{bind: 127.0.0.1, port: 0}}
modems:
  - {{id: a, imei: "{imei}"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
retention:
  nightly_backups: 0
modem_manager:
  scan: ["{by_id}/*"]
  heartbeat_seconds: 1
  sweep_seconds: 1
  reconnect_max_seconds: 1
  command_timeout_seconds: 2
"""


def _ping(data_dir: Path) -> bool:
    try:
        return bool(request(data_dir, "ping", timeout=1).get("ok"))
    except ControlError:
        return False


def test_an_answer_sent_while_the_gateway_is_down_is_handled_when_it_comes_back(tmp_path):
    sim = SimProcess(tmp_path / "sim", "--modems", "1", "--handsets", "1", "--report-delay", "0")
    proc = None
    try:
        imei, number = sim.modems[0]["imei"], sim.modems[0]["number"]
        (handset,) = sim.handsets
        data_dir = tmp_path / "data"
        config = tmp_path / "gateway.yaml"
        config.write_text(
            CONFIG.format(data_dir=data_dir, imei=imei, by_id=tmp_path / "sim" / "by-id"),
            encoding="utf-8",
        )
        log = tmp_path / "gateway.log"
        db = data_dir / "gateway.sqlite3"

        def dead() -> str:
            reason = sim.dead()
            if not reason and proc is not None and proc.poll() is not None:
                reason = f"gateway exited with {proc.returncode}: {log.read_text()[-3000:]}"
            return reason

        def texts() -> list[str]:
            return [m["text"] for m in sim.inbox(handset)]

        proc = spawn_gateway(config, log)
        poll(lambda: _ping(data_dir), 15, "the control socket", dead)
        added = request(
            data_dir,
            "keyword",
            action="add",
            short_code="55123",
            word="SCHOOL",
            reply="Welcome!",
            questions=[
                {"field": "school", "ask": "Which school?", "choices": ["Lincoln", "Washington"]},
                {"field": "grade", "ask": "Which grade?", "choices": ["3", "4", "5"]},
            ],
            done_reply="All set.",
        )
        assert added["ok"], added
        poll(lambda: read_rows(db, "SELECT 1 FROM modems WHERE last_up IS NOT NULL"), 15,
             "the modem up", dead)  # fmt: skip
        sim.text_from(handset, number, "school")
        poll(lambda: "Which school?" in texts(), 15, "the first question", dead)
        sim.text_from(handset, number, "washington")
        poll(lambda: "Which grade?" in texts(), 15, "the second question", dead)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()[-3000:]
        proc = None
        sim.text_from(handset, number, "4")  # nobody reads the SIM now
        poll(lambda: sim.stored(imei), 10, "the answer kept on the SIM", sim.dead)

        proc = spawn_gateway(config, log)
        poll(lambda: "All set." in texts(), 20, "the path's last reply", dead)
        (row,) = read_rows(db, "SELECT custom FROM profiles")
        assert json.loads(row["custom"]) == {"school": "Washington", "grade": "4"}
        (path,) = read_rows(db, "SELECT state FROM keyword_paths")
        assert path["state"] == "done"
        poll(lambda: not sim.stored(imei), 10, "the SIM emptied once stored", dead)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        sim.stop()
