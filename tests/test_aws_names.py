"""config.aws_names: the AWS naming rules, each stated as AWS states it and checked against the code."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import aws_names
from config.errors import SettingError

IDENTIFIER_TEXT = st.text(alphabet="abcz019-", min_size=1, max_size=70)


@given(IDENTIFIER_TEXT, st.integers(0, 5))
def test_an_rds_identifier_is_accepted_exactly_when_the_api_rules_hold(identifier: str, replicas: int) -> None:
    """CreateDBInstance: 1-63 letters, digits or hyphens; a letter first; no trailing hyphen, no '--'."""
    suffix = f"-replica-{replicas}" if replicas else ""
    rules = (identifier[0].isalpha() and not identifier.endswith("-") and "--" not in identifier
             and len(identifier + suffix) <= 63)
    assert (aws_names.rds_identifier_problem(identifier, suffix=suffix) is None) == rules


@given(st.sampled_from(["vpc", "subnet", "sg"]), st.integers(1, 20), st.sampled_from(["0123456789abcdef",
                                                                                     "0123456789ABCDEF"]))
def test_a_resource_id_is_its_prefix_and_8_or_17_lowercase_hex_digits(prefix: str, digits: int,
                                                                        alphabet: str) -> None:
    value = f"{prefix}-{(alphabet * 2)[:digits]}"
    accepted = digits in (8, 17) and not re.search("[A-F]", value)
    try:
        aws_names.check_aws_id(prefix, value)
    except SettingError:
        assert not accepted
    else:
        assert accepted


@given(st.text(min_size=1, max_size=130), st.text(max_size=260))
def test_a_tag_is_accepted_exactly_when_the_rds_tag_rules_hold(key: str, value: str) -> None:
    """RDS Tag: key 1-128, value 0-256, Unicode letters, digits, white space and _ . : / = + - @; no aws:/rds:."""
    def chars_ok(text: str) -> bool:
        return all(c in "_.:/=+-@" or unicodedata.category(c)[0] in "LZN" for c in text)

    rules = (len(key) <= 128 and len(value) <= 256 and chars_ok(key) and chars_ok(value)
             and not any(t.lower().startswith(("aws:", "rds:")) for t in (key, value)))
    assert (aws_names.tag_problem(key, value) is None) == rules


@pytest.mark.parametrize("name", ["edumatrix_admin", "dba", "a", "a" * 16])
def test_master_user_names_rds_accepts_pass(name: str) -> None:
    assert aws_names.check_master_username(name) == name


@pytest.mark.parametrize("name", ["a" * 17, "_dba", "1dba", "rdsadmin", "rds_superuser", "admin", "pg_dba", "Dba"])
def test_master_user_names_rds_refuses_fail_with_a_fix(name: str) -> None:
    with pytest.raises(SettingError) as caught:
        aws_names.check_master_username(name)
    assert caught.value.fix


def test_an_sns_topic_arn_gives_its_partition_and_region() -> None:
    arn = aws_names.check_sns_topic_arn("arn:aws-us-gov:sns:us-gov-west-1:123456789012:alarms")
    assert aws_names.topic_region(arn) == ("aws-us-gov", "us-gov-west-1")
