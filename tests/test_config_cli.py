"""Config parsing and the command line: every bad input is one clear line naming the field."""

import textwrap

import pytest
from conftest import cli_error_lines

from electrofem.cli import main
from electrofem.config import ConfigError, parse

BASE = {"seed": 1, "preset": "L-S", "box": {"width": 50.0, "height": 80.0}}


def run_cli(tmp_path, text, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent(text))
    code = main(["generate", str(cfg), "-o", str(tmp_path / "out"), "-q"])
    err = cli_error_lines(capsys)
    return code, err


@pytest.mark.parametrize(
    "text, field",
    [
        ('seed = 1\npreset = "L-S"\n[box]\nwidth = 50.0\nheigth = 80.0\n', "box.heigth"),
        ('preset = "L-S"\n[box]\nwidth = 50.0\nheight = -80.0\n', "box.height"),
        ('preset = "L-S"\n[box]\nwidth = 50.0\nheight = 8.0\n', "box height"),
        ('preset = "L-S"\nporosity = 0.05\n[box]\nwidth = 50.0\nheight = 80.0\n', "porosity"),
        (
            "[box]\nwidth = 50.0\nheight = 80.0\n[[layers]]\nporosity = 0.4\n"
            "[[layers.particles]]\ndiameter = -3.0\n",
            "layers[0].particles[0].diameter",
        ),
        ('preset = "L-S"\n[box]\nwidth = 50.0\nheight = 80.0\n[mesh]\nsize = 0\n', "mesh.size"),
        ('preset = "X-Y"\n[box]\nwidth = 50.0\nheight = 80.0\n', "preset"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_config_one_clear_line(tmp_path, capsys, text, field):
    code, err = run_cli(tmp_path, text, capsys)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("electrofem: error:") and field in err[0]


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"box.heigth: unknown key \(did you mean 'height'\?\)"):
        parse({**BASE, "box": {"width": 50.0, "heigth": 80.0}})


def test_layers_config_builds_recipe():
    cfg = parse(
        {
            "seed": 3,
            "box": {"width": 40.0, "depth": 40.0, "height": 50.0},
            "layers": [
                {
                    "thickness_fraction": 0.4,
                    "porosity": 0.45,
                    "particles": [
                        {
                            "distribution": "mixture",
                            "diameters": [8.0, 4.0],
                            "volume_fractions": [0.6, 0.4],
                        }
                    ],
                },
                {
                    "thickness_fraction": 0.6,
                    "porosity": 0.5,
                    "particles": [
                        {
                            "distribution": "lognormal",
                            "mean_diameter": 5.0,
                            "std_diameter": 1.0,
                            "shell_thickness": 0.3,
                            "phase": "active",
                            "shell_phase": "second",
                        }
                    ],
                },
            ],
            "contacts": {"mode": "gap"},
            "calender": {"porosity": 0.4},
        }
    )
    e = cfg.electrode
    assert cfg.box.dim == 3 and len(e.layers) == 2
    assert e.contacts.mode == "gap" and e.calender_porosity == 0.4
    assert abs(e.target_porosity - (0.4 * 0.45 + 0.6 * 0.5)) < 1e-12


def test_particles_csv_config(tmp_path):
    (tmp_path / "p.csv").write_text("x,y,r,phase\n10,10,3,active\n30,20,4,second\n")
    cfg = parse({"box": {"width": 50.0, "height": 40.0}, "particles": {"csv": "p.csv"}}, tmp_path)
    assert cfg.particles_csv == tmp_path / "p.csv" and cfg.electrode is None


def test_ratio_as_an_l_share():
    """``ratio = 0.3`` is ``"3:7"`` (a study sweeps the L share as one continuous value); a
    share outside [0, 1] is refused with the field's name."""
    base = {"preset": "L-S", "box": {"width": 50, "height": 60}}
    assert parse({**base, "ratio": 0.3}).electrode == parse({**base, "ratio": "3:7"}).electrode
    assert parse({**base, "ratio": 1}).electrode == parse({**base, "ratio": [1, 0]}).electrode
    with pytest.raises(ConfigError, match="ratio: .*L share in \\[0, 1\\], got 1.5"):
        parse({**base, "ratio": 1.5})
