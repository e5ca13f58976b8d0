"""config.yamlfile reads YAML as a person wrote it: plain data round-trips, and what YAML readers disagree on
is text (so a typed setting refuses it) rather than a silent boolean, octal number or date."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from config.errors import ConfigError
from config.yamlfile import key_at_line, parse_yaml, read_yaml

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
PLAIN = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                            max_size=4),
                     max_leaves=20)


@given(PLAIN)
def test_plain_data_written_by_a_yaml_writer_reads_back_unchanged(data: object) -> None:
    assert parse_yaml(yaml.safe_dump(data), "f.yaml") == data


@pytest.mark.parametrize("written", ["yes", "no", "on", "off", "y", "n", "Yes", "OFF"])
def test_yaml_1_1_booleans_are_text(written: str) -> None:
    assert parse_yaml(f"a: {written}", "f.yaml") == {"a": written}


@pytest.mark.parametrize("written", ["0755", "1_000", "1:30", "0x1F", "0o17", "1e3", ".5", ".inf", "2024-01-01",
                                     "2024-01-01T10:00:00Z"])
def test_numbers_and_dates_readers_disagree_on_are_text(written: str) -> None:
    assert parse_yaml(f"a: {written}", "f.yaml") == {"a": written}


@pytest.mark.parametrize(("written", "value"), [("true", True), ("False", False), ("~", None), ("", None),
                                                ("null", None), ("12", 12), ("-3", -3), ("0", 0), ("1.5", 1.5),
                                                ("1.0e+16", 1e16)])
def test_values_every_reader_agrees_on_keep_their_type(written: str, value: object) -> None:
    assert parse_yaml(f"a: {written}", "f.yaml") == {"a": value}


def test_a_key_given_twice_names_the_key_path_and_both_lines() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a:\n  b: 1\n  c: 2\n  b: 3\n", "f.yaml")
    [problem] = caught.value.problems
    assert (problem.key, problem.message.split(";")[0]) == ("a.b", "given twice (lines 2 and 4)")


def test_a_merge_key_may_repeat_what_it_merges() -> None:
    assert parse_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n", "f.yaml")["other"] == {"x": 3, "y": 2}


def test_a_non_utf8_byte_names_the_key_whose_line_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a:\n  b: ok\n  c: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        read_yaml(path, "f.yaml")
    [problem] = caught.value.problems
    assert (problem.key, problem.message) == ("a.c", "is not UTF-8 text (byte 0xe9 on line 3)")


def test_a_utf8_byte_order_mark_is_accepted_as_pulumi_accepts_it(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_yaml(path, "f.yaml") == {"a": 1}


def test_the_line_of_a_flow_mapping_entry_belongs_to_its_key() -> None:
    text = "config:\n  x:\n    a: 1\n  y: {b: 2}\n"
    assert [key_at_line(text, n) for n in (1, 2, 3, 4)] == ["config", "config.x", "config.x.a", "config.y.b"]


def test_a_yaml_syntax_error_names_its_line_and_what_the_parser_expected_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: [1, 2\nb: 3\n", "s.yaml")
    [problem] = caught.value.problems
    assert (problem.key, problem.message) == (
        "line 2", "not valid YAML: while parsing a flow sequence did not find expected ',' or ']'")


def test_a_yaml_syntax_error_without_context_is_reported_by_its_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: b: c\n", "s.yaml")
    assert caught.value.problems[0].message == "not valid YAML: mapping values are not allowed in this context"


def test_a_yaml_error_with_neither_context_nor_problem_is_reported_by_its_text() -> None:
    from config.yamlfile import _one_line

    assert _one_line(yaml.YAMLError("the  document\nends early")) == "the document ends early"


def test_the_line_of_a_sequence_item_belongs_to_its_index() -> None:
    text = "config:\n  regions:\n    - a\n    - name: b\n      x: 1\n"
    assert [key_at_line(text, n) for n in range(1, 6)] == [
        "config", "config.regions", "config.regions[0]", "config.regions[1].name", "config.regions[1].x"]


def test_a_line_of_a_document_that_does_not_parse_is_named_by_its_number() -> None:
    assert key_at_line("a: [\n", 1) == "line 1"
