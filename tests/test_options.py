"""One name, one default, one check per parameter: the options classes of the jobs agree with
the TOML tables and the command-line flags that are made from them."""

import argparse
import dataclasses

import pytest

from electrofem.cli import build_parser
from electrofem.config import JOB_TABLES, ConfigError, parse_options
from electrofem.params import OptionsError, default_of, describe, flag_names, specs

VERBS = {
    "transport": "transport",
    "discharge": "discharge",
    "infiltration": "infiltrate",
    "conductivity": "conductivity",
}


def _subparser(verb: str) -> argparse.ArgumentParser:
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[verb]


@pytest.mark.parametrize("table", sorted(JOB_TABLES))
def test_toml_cli_and_api_agree_on_every_default(table):
    cls = JOB_TABLES[table]
    api = cls()
    toml = parse_options(cls, {}, table)  # an empty [table]
    assert dataclasses.asdict(toml) == dataclasses.asdict(api)
    assert specs(cls), f"{cls.__name__} defines no parameters"
    for row in describe(cls):  # every parameter documented once, with its default
        assert row["doc"], f"{table}.{row['name']}: no doc"
        assert row["default"] == getattr(api, row["name"])
    # the command line: each flag is the field's, its absence leaves the default
    sp = _subparser(VERBS[table])
    dests = {a.dest: a for a in sp._actions}
    args = sp.parse_args(["SOURCE", "-o", "OUT"])
    for name, flag in flag_names(cls).items():
        assert name in dests and flag in dests[name].option_strings, (table, name, flag)
        assert getattr(args, name) is None  # not given: the options object decides
        f = dataclasses.fields(cls)
        field = next(x for x in f if x.name == name)
        assert default_of(field) == getattr(api, name)


@pytest.mark.parametrize("table", sorted(JOB_TABLES))
def test_every_failure_names_its_field(table):
    cls = JOB_TABLES[table]
    for name, (field, _) in specs(cls).items():
        bad = {name: "not a value"} if default_of(field) != "not a value" else {name: -1}
        try:
            parse_options(cls, bad, table)
        except ConfigError as err:
            assert str(err).startswith(f"{table}.{name}"), str(err)
    with pytest.raises(ConfigError, match=rf"{table}\.nonsense: unknown key"):
        parse_options(cls, {"nonsense": 1}, table)


def test_flag_errors_name_the_flag():
    from electrofem.params import apply_flags

    cls = JOB_TABLES["discharge"]
    args = argparse.Namespace(rest_s=-5.0, charge=None, max_steps_per_phase=None)
    with pytest.raises(OptionsError, match=r"^--rest: must be >= 0, got -5.0$"):
        apply_flags(cls(), args)
