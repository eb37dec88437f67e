"""Pure pieces of the webhook pipeline: egress policy, backoff, signature, target choice, settings."""

from __future__ import annotations

import pytest

from shared.stores.settings import SettingsError, validate
from workers.job_scripts import backoff
from workers.webhooks.delivery import target_url
from workers.webhooks.egress import EgressRefused, check_address, check_host
from workers.webhooks.signing import sign, verify


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0",
                                     "::ffff:169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_link_local_and_metadata_addresses_are_refused(address):
    with pytest.raises(EgressRefused):
        check_address(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.5", "192.168.1.1", "93.184.216.34"])
def test_loopback_private_and_public_addresses_are_allowed(address):
    check_address(address)


def test_host_names_are_resolved_and_checked():
    check_host("localhost", 80)
    with pytest.raises(EgressRefused):
        check_host("[fe80::1]", 80)
    with pytest.raises(OSError):
        check_host("no-such-host.invalid", 80)


def test_backoff_doubles_with_bounded_jitter():
    for failures in range(1, 10):
        delays = [backoff(5, failures) for _ in range(200)]
        nominal = 5 * 2 ** (failures - 1)
        assert nominal * 0.8 <= min(delays) and max(delays) <= nominal * 1.2
        assert len(set(delays)) > 1  # jittered
    assert backoff(5, 100) <= 6 * 3600 * 1.2  # capped


def test_signature_is_unpadded_base64url_hmac_sha256():
    signature = sign("secret", b'{"a":1}')
    assert len(signature) == 43 and "=" not in signature and "+" not in signature and "/" not in signature
    assert verify("secret", b'{"a":1}', signature)
    assert not verify("other", b'{"a":1}', signature)
    assert not verify("secret", b'{"a":2}', signature)


def test_target_url_filters_events():
    on = {"webhooksEnabled": True, "webhooks": "http://h/", "webhookEvents": ["*"]}
    assert target_url(on, None, None, "messageNew") == "http://h/"  # a job from before targets were stored
    assert target_url(on, None, "http://acct/", "messageNew") == "http://acct/"
    assert target_url(on, "http://fixed/", None, "messageNew") == "http://fixed/"  # fixed at emit wins
    assert target_url(on, "", "http://acct/", "messageNew") is None  # fixed to nobody (deleted account)
    assert target_url({**on, "webhooksEnabled": False}, "http://fixed/", None, "messageNew") is None
    only_deleted = {**on, "webhookEvents": ["messageDeleted"]}
    assert target_url(only_deleted, "http://fixed/", None, "messageNew") is None
    assert target_url({**on, "webhooks": ""}, None, None, "messageNew") is None


def test_target_key_is_scheme_host_port_without_user_info():
    from shared.webhook_target import target_key

    assert target_key("https://user:pass@Hooks.Example.com/a?b=1") == "https://hooks.example.com:443"
    assert target_key("http://h:8080/x") == "http://h:8080"
    assert target_key("http://h/") == "http://h:80"
    assert target_key("") == ""


def test_settings_validation_reports_every_bad_field():
    with pytest.raises(SettingsError) as caught:
        validate({"webhooks": "javascript:alert(1)", "webhooksEnabled": 1, "webhookEvents": ["*"]})
    assert set(caught.value.fields) == {"webhooks", "webhooksEnabled"}
    assert validate({"webhooks": " https://x.example/h ", "webhookEvents": ["messageNew", "messageNew"]}) == {
        "webhooks": "https://x.example/h", "webhookEvents": ["messageNew"]}


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "100.64.0.1",
                                     "::1", "fc00::1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1"])
def test_non_global_addresses_refused_with_deny(address):
    from workers.webhooks import egress

    egress.configure("deny")
    try:
        with pytest.raises(EgressRefused):
            check_address(address)
        check_address("93.184.216.34")  # a public address stays allowed
    finally:
        egress.configure("allow")
    check_address(address)


def test_printable_bounds_untrusted_text():
    from workers.webhooks.untrusted import printable, without_userinfo

    assert printable("a\x1b[31mb\x00c\r\nd\u202ee") == "a [31mb c d e"
    assert len(printable("x" * 1000)) == 300 and printable("x" * 1000).endswith("…")
    assert without_userinfo("https://u:p@h/x?y=1") == "https://h/x?y=1"
