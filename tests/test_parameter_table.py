"""config/parameter_table.py: the checked-in table of what RDS accepts per parameter (apply method, type, allowed
values, bounds, RDS's own defaults), read row by row, and the reasons it gives for a value RDS would refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import config
from config.parameter_table import ParameterSpec, ParameterTable, available_families, parameter_table
from config.parameters import platform_parameters, platform_values
from config.settings import InstanceSettings


@pytest.fixture
def table() -> ParameterTable:
    # per test, not at import: under `make mutation` the import happens before the mutant is chosen
    return parameter_table("postgres15")


def test_a_bounded_integer_parameter_reads_back_with_its_bounds_and_apply_method(table: ParameterTable) -> None:
    assert table.get("max_connections") == ParameterSpec(
        name="max_connections", apply="static", type="integer", minimum=1, maximum=262143)


def test_a_parameter_with_a_unit_keeps_it(table: ParameterTable) -> None:
    assert table.get("log_min_duration_statement") == ParameterSpec(
        name="log_min_duration_statement", apply="dynamic", type="integer", minimum=-1, maximum=2147483647,
        unit="ms")


def test_an_enumerated_parameter_keeps_its_allowed_values_and_its_source(table: ParameterTable) -> None:
    spec = table.get("ssl_min_protocol_version")
    assert spec is not None
    assert (spec.type, spec.allowed, spec.minimum, spec.rds_default) == (
        "enum", ("TLSv1", "TLSv1.1", "TLSv1.2"), None, None)
    assert spec.source.startswith('AWS RDS user guide, "Using SSL with a PostgreSQL DB instance"')


def test_a_parameter_rds_sets_by_default_records_that_default(table: ParameterTable) -> None:
    spec = table.get("rds.force_ssl")
    assert spec is not None
    assert (spec.apply, spec.type, spec.allowed, spec.rds_default) == ("static", "bool", ("0", "1"), "1")


def test_a_row_without_a_source_reads_with_no_source(table: ParameterTable) -> None:
    assert table.get("shared_preload_libraries") == ParameterSpec(
        name="shared_preload_libraries", apply="static", type="string")


def test_parameter_names_are_case_insensitive(table: ParameterTable) -> None:
    assert table.get("MAX_Connections") is table.get("max_connections") is not None


def test_an_unknown_parameter_has_no_spec(table: ParameterTable) -> None:
    assert table.get("max_connection") is None


@pytest.mark.parametrize(("name", "method"), [("max_connections", "pending-reboot"),
                                              ("log_min_duration_statement", "immediate")])
def test_static_parameters_apply_at_the_next_reboot_and_dynamic_ones_immediately(
        name: str, method: str, table: ParameterTable) -> None:
    assert table.apply_method(name) == method


def test_the_apply_method_of_an_unknown_parameter_is_refused_naming_the_table(table: ParameterTable) -> None:
    with pytest.raises(KeyError, match=r"max_connection is not a postgres15 parameter on RDS "
                                       r"\(config/rds_parameters/postgres15.json\)"):
        table.apply_method("max_connection")


def test_a_value_in_range_passes(table: ParameterTable) -> None:
    assert table.problem("max_connections", "1000") is None


def test_a_value_out_of_range_names_the_bounds(table: ParameterTable) -> None:
    assert table.problem("max_connections", "262144") == "max_connections takes 1 to 262143, not 262144"


def test_a_value_below_the_minimum_is_refused_too(table: ParameterTable) -> None:
    assert table.problem("max_connections", "0") == "max_connections takes 1 to 262143, not 0"


def test_the_bounds_themselves_are_accepted(table: ParameterTable) -> None:
    assert (table.problem("max_connections", "1"), table.problem("max_connections", "262143")) == (None, None)


def test_fractional_bounds_are_shown_as_they_are(table: ParameterTable) -> None:
    assert table.problem("checkpoint_completion_target", "1.5") == (
        "checkpoint_completion_target takes 0 to 1, not 1.5")
    assert table.problem("autovacuum_vacuum_cost_delay", "-1.5") == (
        "autovacuum_vacuum_cost_delay takes -1 to 100, not -1.5")


def test_a_real_parameter_takes_a_fraction(table: ParameterTable) -> None:
    assert table.problem("checkpoint_completion_target", "0.9") is None


def test_an_integer_parameter_refuses_a_fraction(table: ParameterTable) -> None:
    assert table.problem("max_connections", "10.5") == "max_connections takes a whole number, not '10.5'"


def test_a_word_for_a_number_names_the_unit(table: ParameterTable) -> None:
    assert table.problem("log_min_duration_statement", "fast") == (
        "log_min_duration_statement takes a number (ms), not 'fast'")


def test_a_word_for_a_unitless_number_says_so(table: ParameterTable) -> None:
    assert table.problem("max_connections", "many") == "max_connections takes a number (no unit), not 'many'"


def test_a_value_outside_the_allowed_ones_lists_them(table: ParameterTable) -> None:
    assert table.problem("ssl_min_protocol_version", "TLSv1.3") == (
        "ssl_min_protocol_version takes one of TLSv1, TLSv1.1, TLSv1.2, not 'TLSv1.3'")


def test_an_allowed_value_passes_with_surrounding_spaces(table: ParameterTable) -> None:
    assert table.problem("ssl_min_protocol_version", " TLSv1.2 ") is None


def test_an_rds_formula_is_left_to_rds(table: ParameterTable) -> None:
    assert table.problem("max_connections", "{DBInstanceClassMemory/12038}") is None


def test_a_value_only_opening_a_formula_is_judged_as_a_value(table: ParameterTable) -> None:
    assert table.problem("max_connections", "{DBInstanceClassMemory/12038") == (
        "max_connections takes a number (no unit), not '{DBInstanceClassMemory/12038'")


def test_an_unknown_parameter_is_refused_naming_the_family(table: ParameterTable) -> None:
    assert table.problem("max_connection", "10") == "'max_connection' is not a postgres15 parameter on RDS"


def test_setting_a_parameter_to_rds_s_own_default_is_refused_as_a_perpetual_diff(table: ParameterTable) -> None:
    assert table.problem("rds.force_ssl", "1") == (
        "rds.force_ssl=1 is the postgres15 default on RDS: the provider never reads it back, so every preview "
        "shows a change (hashicorp/terraform-provider-aws#23335); leave it out")


def test_another_value_of_a_parameter_with_an_rds_default_passes(table: ParameterTable) -> None:
    assert table.problem("rds.force_ssl", "0") is None


def test_the_families_checked_in_are_listed_in_order() -> None:
    assert available_families() == ("postgres15", "postgres16")


def test_a_family_without_a_table_is_refused_saying_how_to_build_one() -> None:
    with pytest.raises(KeyError, match=r"no parameter table for postgres17 is checked in \(postgres15, postgres16 "
                                       r"are\); build one with scripts/rds_parameter_table.py --major 17"):
        parameter_table("postgres17")


def test_the_table_knows_its_family_and_where_it_came_from(table: ParameterTable) -> None:
    data = json.loads((Path(config.__file__).parent / "rds_parameters" / "postgres15.json").read_text())
    assert (table.family, table.generated, table.sources) == ("postgres15", data["generated"], tuple(data["sources"]))


def test_a_fractional_bound_is_written_as_it_is() -> None:
    from config.parameter_table import _num

    assert (_num(0.5), _num(2.0), _num(-1)) == ("0.5", "2", "-1")


def test_the_platform_forces_tls_itself_whatever_the_familys_default() -> None:
    assert platform_values(InstanceSettings())["rds.force_ssl"] == "1"


def test_a_parameter_no_family_table_knows_is_refused_naming_the_table() -> None:
    unchecked = InstanceSettings.model_construct(parameters={"no_such_param": "1"})  # the loader would refuse it
    with pytest.raises(KeyError, match=r"no_such_param is not a postgres15 parameter "
                                       r"\(config/rds_parameters/postgres15.json\)"):
        platform_parameters(unchecked)
