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
                                                ("1.0e+16", 1e16), ("True", True), ("TRUE", True), ("false", False),
                                                ("FALSE", False), ("Null", None), ("NULL", None), ("+7", 7),
                                                ("-0.5", -0.5), ("+2.", 2.0)])
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


TWICE = "YAML readers keep only one of them, Pulumi the last"
ONE_LINE = "delete one of the two lines (or merge them)"
NOT_PLAIN = ("write plain text, a number, true/false, a list or a mapping: stack configuration reaches the program as "
             "JSON, which has no sets, dates, binary or custom types")


def slashed(path: tuple[str | int, ...]) -> str:
    """A key formatter other than the default, to show the caller's is used everywhere."""
    return "/".join(map(str, path))


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("a:\n  b: 1\n  c: 2\n  b: 3\n", [("a/b", f"given twice (lines 2 and 4); {TWICE}", ONE_LINE)],
                 id="key-given-twice"),
    pytest.param("a: 1\na: 2\na: 3\n", [("a", f"given twice (lines 1 and 2); {TWICE}", ONE_LINE),
                                         ("a", f"given twice (lines 1 and 3); {TWICE}", ONE_LINE)],
                 id="key-given-three-times-is-told-against-its-first-line"),
    pytest.param("1: x\n", [("line 1", "key '1' on line 1 is not text", 'quote the key ("1")')],
                 id="number-key-at-the-top-is-named-by-its-line"),
    pytest.param("a:\n  null: x\n", [("a", "key 'null' on line 2 is not text", 'quote the key ("null")')],
                 id="null-key-is-named-by-its-mapping"),
    pytest.param("? {a: 1}\n: x\n", [("line 1", "key 'a list or mapping' on line 1 is not text",
                                      "keys are plain text; move the structure into the value")],
                 id="mapping-as-a-key"),
    pytest.param("a: !!set {x}\n", [("a", "YAML tag !!set on line 1 is not a plain value", NOT_PLAIN)],
                 id="set-tag"),
    pytest.param("a:\n  - !Ref Owner\n", [("a/0", "YAML tag !Ref on line 2 is not a plain value", NOT_PLAIN)],
                 id="custom-tag-in-a-list"),
    pytest.param("a: &x {b: 1, b: 2}\nc: *x\n", [("a/b", f"given twice (lines 1 and 1); {TWICE}", ONE_LINE)],
                 id="problem-of-an-anchor-is-told-where-it-is-defined-only"),
    pytest.param("other:\n  <<: {x: !!binary cGxh}\n",
                 [("other/x", "YAML tag !!binary on line 2 is not a plain value", NOT_PLAIN)],
                 id="problem-of-a-merged-mapping-is-told-at-the-key-it-merges-in"),
    pytest.param("a:\n  <<: {x: 1}\n  y: !!set {z}\n",
                 [("a/y", "YAML tag !!set on line 3 is not a plain value", NOT_PLAIN)],
                 id="keys-after-a-merge-key-are-checked"),
    pytest.param("a:\n  1: x\n  b: !!set {z}\n", [
        ("a", "key '1' on line 2 is not text", 'quote the key ("1")'),
        ("a/b", "YAML tag !!set on line 3 is not a plain value", NOT_PLAIN)],
                 id="keys-after-a-key-that-is-not-text-are-checked"),
    pytest.param("a: [1, 2\nb: 3\n", [(
        "line 2", "not valid YAML: while parsing a flow sequence did not find expected ',' or ']'",
        "fix the YAML syntax on line 2 (or just above it): indentation, a missing ':' or an unclosed quote or "
        "bracket")], id="syntax-error"),
    pytest.param("a: \x07\n", [(
        "line 1", 'not valid YAML: unacceptable character #x0007: control characters are not allowed in '
        '"<unicode string>", position 3', "fix the YAML syntax on line 1 (or just above it): indentation, a "
        "missing ':' or an unclosed quote or bracket")], id="control-character-without-a-line-mark"),
    pytest.param("a: 1\nb: \x07\n", [(
        "line 2", 'not valid YAML: unacceptable character #x0007: control characters are not allowed in '
        '"<unicode string>", position 8', "fix the YAML syntax on line 2 (or just above it): indentation, a "
        "missing ':' or an unclosed quote or bracket")], id="control-character-on-a-later-line-is-told-at-its-line"),
    pytest.param("\na: \x07\n", [(
        "line 2", 'not valid YAML: unacceptable character #x0007: control characters are not allowed in '
        '"<unicode string>", position 4', "fix the YAML syntax on line 2 (or just above it): indentation, a "
        "missing ':' or an unclosed quote or bracket")], id="control-character-after-a-leading-blank-line"),
    pytest.param("a: 1\n---\nb: 2\n", [(
        "line 2", "not valid YAML: expected a single document in the stream but found another document",
        "fix the YAML syntax on line 2 (or just above it): indentation, a missing ':' or an unclosed quote or "
        "bracket")], id="second-document"),
])
def test_a_yaml_problem_is_told_in_these_words(text: str, expected: list[tuple[str, str, str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "s.yaml", key_of=slashed)
    assert [(p.source, p.key, p.message, p.fix) for p in caught.value.problems] == [("s.yaml", *e) for e in expected]


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_document_is_none(text: str) -> None:
    assert parse_yaml(text, "s.yaml") is None


def test_a_file_that_cannot_be_read_is_told_why_and_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_yaml(tmp_path / "missing.yaml", "s.yaml")
    assert [(p.source, p.key, p.message, p.fix) for p in caught.value.problems] == [(
        "s.yaml", "", "cannot be read: No such file or directory",
        "make the file readable by the user running edumatrix-db or pulumi")]


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(b"a:\n  b: ok\n  c: caf\xe9\n", ("a/c", "is not UTF-8 text (byte 0xe9 on line 3)"), id="in-a-value"),
    pytest.param(b"# caf\xe9\na: 1\n", ("line 1", "is not UTF-8 text (byte 0xe9 on line 1)"), id="in-a-comment"),
])
def test_a_non_utf8_file_is_told_the_key_the_byte_and_how_to_convert(
        tmp_path: Path, data: bytes, expected: tuple[str, str]) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        read_yaml(path, "s.yaml", key_of=slashed)
    assert [(p.source, p.key, p.message, p.fix) for p in caught.value.problems] == [(
        "s.yaml", *expected,
        "save the file as UTF-8 (Pulumi reads stack files as UTF-8), e.g. iconv -f latin1 -t utf-8")]


def test_a_valid_file_is_read_with_the_callers_key_formatter_unused(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("a: [1, {b: x}]\n")
    assert read_yaml(path, "s.yaml", key_of=slashed) == {"a": [1, {"b": "x"}]}


def test_a_yaml_error_with_neither_a_mark_nor_a_position_is_told_at_line_1() -> None:
    from config.yamlfile import _line_of

    assert _line_of(yaml.YAMLError("no place given"), "a: 1\nb: 2\n") == 1
