"""The whole stack as users start it: the Procfile under honcho, embedded Redis included."""

from support.scrape import CONTRACT, parse, scrape_text, types, value
from support.servers import wait_for
from support.stack import HonchoStack


def test_honcho_runs_the_procfile_with_more_workers(tmp_path):
    with HonchoStack(tmp_path, "imap=2,webhooks=2") as stack:
        token = stack.issue_token("metrics")

        def all_workers():
            samples = parse(scrape_text(stack.url, token))
            return (value(samples, "threads", type="imap", recent="yes") == 2
                    and value(samples, "threads", type="webhooks", recent="yes") == 2
                    and value(samples, "threads", type="submit", recent="yes") == 1 and samples)

        samples = wait_for(all_workers, what="two imap, two webhooks and one submit worker")
        found = types(scrape_text(stack.url, token))
        assert [name for name in CONTRACT if name not in found] == []
        assert value(samples, "thread_starts") == 6
        assert (tmp_path / "var" / "redis").is_dir()  # the embedded Redis persists under VAR_DIR
    output = stack.output()
    assert "Traceback" not in output
    assert output.count("process stopped") == 6  # web, 2 imap, 2 webhooks, submit exited cleanly
