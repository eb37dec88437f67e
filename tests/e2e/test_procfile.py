"""The whole stack as users start it: the Procfile under honcho, embedded Redis included."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from support.scrape import CONTRACT, parse, scrape_text, types, value
from support.servers import ROOT, free_port, wait_for


def test_honcho_runs_the_procfile_with_more_workers(tmp_path):
    bin_dir = Path(sys.executable).parent
    redis_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "REDIS_"))}
    env.update(VAR_DIR=str(tmp_path / "var"), EMBEDDED_REDIS_PORT=str(redis_port),
               REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", HEARTBEAT_INTERVAL="1")
    # honcho gives the first Procfile entry (web) the PORT of its env file; ours, not the repo's .env.
    env_file = tmp_path / "test.env"
    env_file.write_text(f"PORT={web_port}\n")
    log = open(tmp_path / "honcho.log", "wb")
    honcho = subprocess.Popen(
        [str(bin_dir / "honcho"), "start", "-e", str(env_file), "-c", "imap=2,webhooks=2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{web_port}"
    try:
        def healthy():
            try:
                return requests.get(base + "/health", timeout=5).status_code == 200
            except requests.ConnectionError:
                assert honcho.poll() is None, (tmp_path / "honcho.log").read_text()
                return False

        wait_for(healthy, timeout=60, what="the stack to be healthy")
        issued = subprocess.run([str(bin_dir / "mailpulse"), "tokens", "issue", "--scope", "metrics"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        token = issued.stdout.strip().splitlines()[-1]

        def all_workers():
            samples = parse(scrape_text(base, token))
            return (value(samples, "threads", type="imap", recent="yes") == 2
                    and value(samples, "threads", type="webhooks", recent="yes") == 2 and samples)

        samples = wait_for(all_workers, what="two imap and two webhooks workers")
        text = scrape_text(base, token)
        found = types(text)
        assert [name for name in CONTRACT if name not in found] == []
        assert value(samples, "thread_starts") == 5
        assert (tmp_path / "var" / "redis").is_dir()  # the embedded Redis persists under VAR_DIR
    finally:
        os.killpg(honcho.pid, signal.SIGINT)
        honcho.wait(30)
        log.close()
    output = (tmp_path / "honcho.log").read_text()
    assert "Traceback" not in output
    assert output.count("process stopped") == 5  # web, 2 imap, 2 webhooks exited cleanly
