"""config.aws_names: the AWS naming rules, each stated as AWS states it and checked against the code."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import aws_names
from config.errors import SettingError
from config.stack_rules import longest_stack_name

IDENTIFIER_TEXT = st.text(alphabet="abcz019-", min_size=1, max_size=70)


@given(IDENTIFIER_TEXT, st.integers(0, 5))
def test_an_rds_identifier_is_accepted_exactly_when_the_api_rules_hold(identifier: str, replicas: int) -> None:
    """CreateDBInstance: 1-63 letters, digits or hyphens; a letter first; no trailing hyphen, no '--'."""
    suffix = f"-replica-{replicas}" if replicas else ""
    rules = (identifier[0].isalpha() and not identifier.endswith("-") and "--" not in identifier
             and len(identifier + suffix) <= 63)
    assert (aws_names.rds_identifier_problem(identifier, suffix=suffix) is None) == rules


@pytest.mark.parametrize(("identifier", "suffix"), [("a" * 63, ""), ("a" * 53, "-replica-1")])
def test_an_rds_identifier_of_exactly_63_characters_is_accepted(identifier: str, suffix: str) -> None:
    assert aws_names.rds_identifier_problem(identifier, suffix=suffix) is None


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


NOT_PLAIN = ("is not a plain PostgreSQL identifier: use lower-case letters, digits and underscores, starting with a "
             "letter or underscore (no quotes, spaces, semicolons or capitals)")


ECR_FIX = ("2-256 lowercase letters, digits and . _ - separated path parts, e.g. platform/pgbouncer (the "
           "repository's name, not its URI)")


@pytest.mark.parametrize(("check", "value", "message", "fix"), [
    ("check_database_name", "Edu", f"databaseName 'Edu' {NOT_PLAIN}",
     "use lowercase letters, digits and underscores, e.g. edumatrix"),
    ("check_database_name", "_9x", "databaseName '_9x' starts with '_'; RDS database names begin with a letter "
                                   "(CreateDBInstance DBName)", "e.g. x"),
    ("check_database_name", "_9", "databaseName '_9' starts with '_'; RDS database names begin with a letter "
                                  "(CreateDBInstance DBName)", "e.g. edumatrix"),
    ("check_database_name", "rdsadmin", "databaseName 'rdsadmin' already exists on every RDS for PostgreSQL "
                                        "instance", "choose the platform's own name, e.g. edumatrix"),
    ("check_master_username", "Dba", f"masterUsername 'Dba' {NOT_PLAIN}",
     "use lowercase letters, digits and underscores, e.g. edumatrix_admin"),
    ("check_master_username", "_dba", "masterUsername '_dba' starts with '_'; RDS needs a letter first "
                                      "(CreateDBInstance MasterUsername)", "e.g. edumatrix_admin"),
    ("check_master_username", "abcdefghijklmno__x", "masterUsername 'abcdefghijklmno__x' is 18 characters; RDS "
                                                    "allows at most 16 (CreateDBInstance MasterUsername)",
     "shorten it, e.g. 'abcdefghijklmno'"),
    ("check_master_username", "_abcdefghijklmno_x", "masterUsername '_abcdefghijklmno_x' starts with '_'; RDS "
                                                    "needs a letter first (CreateDBInstance MasterUsername)",
     "e.g. edumatrix_admin"),
    ("check_master_username", "rdsadmin", "masterUsername 'rdsadmin' is reserved by RDS for PostgreSQL (\"cannot "
                                          "be used as it is a reserved word used by the engine\")",
     "choose another name, e.g. edumatrix_admin"),
    ("check_sns_topic_arn", "arn:aws:sqs:us-east-1:123456789012:q", "'arn:aws:sqs:us-east-1:123456789012:q' is not "
                                                                    "an SNS topic ARN",
     "write arn:aws:sns:<region>:<12-digit account>:<topic name>, e.g. arn:aws:sns:us-east-1:123456789012:db-alarms"),
    ("check_rds_identifier", "Edu", "'Edu' is not an RDS identifier: lowercase letters, digits and hyphens, "
                                    "starting with a letter", aws_names.IDENTIFIER_FIX),
    ("check_ecr_repository", "Platform/PgBouncer", "'Platform/PgBouncer' is not an ECR repository name", ECR_FIX),
    ("check_image_digest", "latest", "'latest' is not an image digest",
     "pin the image by digest: sha256: and 64 hex digits (`aws ecr describe-images` imageDigest); a tag can be "
     "moved, a digest cannot"),
    ("check_secret_arn", "edumatrix/master", "'edumatrix/master' is not a Secrets Manager secret ARN",
     "copy the ARN from `aws secretsmanager describe-secret` "
     "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)"),
])
def test_a_refused_name_says_what_rds_refuses_and_how_to_fix_it(check: str, value: str, message: str,
                                                                   fix: str) -> None:
    with pytest.raises(SettingError) as caught:
        getattr(aws_names, check)(value)
    assert (caught.value.message, caught.value.fix) == (message, fix)


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("k" * 128, "", True), ("k" * 129, "", False), ("", "v", False),
    ("k", "v" * 256, True), ("k", "v" * 257, False),
])
def test_tag_lengths_are_refused_exactly_past_the_rds_limits(key: str, value: str, accepted: bool) -> None:
    assert (aws_names.tag_problem(key, value) is None) == accepted


def test_a_too_long_tag_key_is_told_to_shorten_the_key() -> None:
    assert aws_names.tag_problem("k" * 129, "v") == ("tag key is 129 characters; AWS allows 1 to 128",
                                                     "shorten the key")


def test_a_too_long_tag_value_is_told_to_shorten_the_value() -> None:
    assert aws_names.tag_problem("k", "v" * 257) == ("tag value is 257 characters; AWS allows at most 256",
                                                     "shorten the value")


@pytest.mark.parametrize("char", ["é", " ", "٣", "_", "@"])
def test_unicode_letters_spaces_digits_and_the_listed_symbols_are_tag_characters(char: str) -> None:
    assert aws_names.tag_problem(f"team{char}", f"a{char}") is None



@pytest.mark.parametrize(("key", "value", "problem"), [
    ("aws:team", "v", ("tag key 'aws:team' starts with 'aws:', which AWS reserves", "drop the prefix, e.g. team:team")),
    ("team", "rds:x", ("tag value 'rds:x' starts with 'rds:', which AWS reserves", "drop the prefix, e.g. team:x")),
    ("te$am#", "v", ("tag key 'te$am#' contains '#', '$', which AWS refuses in tags", aws_names.TAG_FIX)),
    ("team", "v!", ("tag value 'v!' contains '!', which AWS refuses in tags", aws_names.TAG_FIX)),
])
def test_a_refused_tag_says_whether_the_key_or_the_value_is_wrong_and_why(key: str, value: str,
                                                                           problem: tuple[str, str]) -> None:
    assert aws_names.tag_problem(key, value) == problem


@pytest.mark.parametrize(("name", "accepted"), [
    ("a", False), ("ab", True), ("a" * 256, True), ("a" * 257, False), ("platform/" + "a" * 247, True),
    ("platform/" + "a" * 248, False),
])
def test_an_ecr_repository_name_is_2_to_256_characters(name: str, accepted: bool) -> None:
    """ECR CreateRepository repositoryName: length 2-256 (the pattern alone admits one letter and any length)."""
    try:
        aws_names.check_ecr_repository(name)
    except SettingError:
        assert not accepted
    else:
        assert accepted


def test_the_longest_stack_name_whose_derived_names_aws_accepts_is_33_characters() -> None:
    """Every name derived from `edumatrix-<stack>` (aws_names.DERIVED_NAMES) must fit its AWS API."""
    assert longest_stack_name() == 33
