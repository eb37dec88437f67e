"""The admin password record: scrypt with a random salt, checked in constant time."""

import pytest

from shared.stores.admin_password import (
    AdminPasswordError,
    check_password,
    fingerprint,
    hash_password,
    validate,
)

FAST = {"n": 2**10}  # the real cost is N=2**15; these tests only need the format and the logic


def test_round_trip_and_wrong_password():
    record = hash_password("correct horse", **FAST)
    assert record.startswith("scrypt$1024$8$1$") and "correct horse" not in record
    assert check_password("correct horse", record)
    assert not check_password("correct horsE", record)
    assert not check_password("", record)


def test_salt_is_random():
    first, second = hash_password("same password", **FAST), hash_password("same password", **FAST)
    assert first != second and fingerprint(first) != fingerprint(second)


def test_default_cost_is_slow_scrypt():
    assert hash_password("x" * 8).split("$")[1:4] == ["32768", "8", "1"]


@pytest.mark.parametrize("record", ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA==$AA==",
                                    "scrypt$1024$8$1$!!$!!"])
def test_malformed_records_never_match(record):
    assert not check_password("anything", record)


@pytest.mark.parametrize("password", ["", "short", "x" * 1025])
def test_unusable_passwords(password):
    with pytest.raises(AdminPasswordError):
        validate(password)
