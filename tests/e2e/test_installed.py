"""A new user's install: `pip install .` (not editable) into a fresh virtualenv outside the
checkout, that virtualenv on PATH, and the stack run from a directory that is not the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from support.scrape import parse, scrape_text, value
from support.servers import ROOT
from support.stack import HonchoStack


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh virtualenv with mailpulse installed from a copy of the working tree."""
    base = tmp_path_factory.mktemp("installed")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    source = base / "source"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    pip = subprocess.run([str(base / "venv" / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                          str(source)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return base / "venv" / "bin"


def test_the_installed_package_is_complete_and_independent_of_the_checkout(installed, tmp_path):
    where = subprocess.run([str(installed / "python"), "-c", "import web; print(web.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(installed.parent)), where  # the installed copy, not the checkout
    for command in ("web", "imap", "webhooks", "embedded-redis", "export"):
        shown = subprocess.run([str(installed / "mailpulse"), command, "--help"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "usage:" in shown.stdout, (command, shown.stderr)


def test_honcho_from_another_directory_with_the_virtualenv_on_path(installed, tmp_path, redis_url):
    app = tmp_path / "app"  # the user's own directory: the Procfile from `mailpulse export procfile`
    exported = subprocess.run([str(installed / "mailpulse"), "export", "procfile", str(app)],
                              capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    with HonchoStack(tmp_path / "run", concurrency="imap=1,webhooks=1", bin_dir=installed, app_dir=app,
                     processes=("web", "imap", "webhooks"), REDIS_URL=redis_url) as stack:
        token = stack.issue_token("metrics")
        samples = parse(scrape_text(stack.url, token))
        assert value(samples, "thread_starts") == 3
        # Package data: the admin pages' templates and static files.
        page = requests.get(stack.url + "/admin/", timeout=10)
        assert page.status_code == 503 and "No admin password is set" in page.text
        assert requests.get(stack.url + "/admin/static/admin.css", timeout=10).status_code == 200
    assert (tmp_path / "run" / "var" / "service-secret").is_file()  # VAR_DIR, not the checkout's var/
    assert not (app / "var").exists() and stack.output().count("process stopped") == 3
