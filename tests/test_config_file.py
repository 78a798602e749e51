"""``evolve --config search.toml``: the file's options, flags over them, recorded in run.json and
printed by ``show`` in a form ``--config`` reads back; a bad key or type is one line, exit 2."""

from __future__ import annotations

import json

import pytest

from gp_loss.commands.config_file import tomllib
from tests.test_cli import call_cli


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("populaton = 10\n", "unknown key 'populaton' (evolve --help lists the options)"),
        ('max-explored = "ten"\n', "'max-explored' must be an integer, got 'ten'"),
        ("no-gec = 1\n", "'no-gec' must be true or false, got 1"),
        ('replace = "newest"\n', "'replace' must be one of oldest, worst, got 'newest'"),
        (
            "task_options = 3\n",
            "'task_options' must be a table ([task_options]) or a list of \"KEY=VALUE\" strings",
        ),
        ("resume = true\n", "'resume' cannot come from a config file"),
        ("max-explored = \n", "not valid TOML (Invalid value (at line 1, column 16))"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_key(tmp_path, text, message):
    config = tmp_path / "search.toml"
    config.write_text(text)
    done = call_cli("evolve", "--config", str(config), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert done.stderr == f"gp-loss: {config}: {message}\n"
    assert not (tmp_path / "run").exists()


def test_a_missing_config_file_is_one_line(tmp_path):
    done = call_cli("evolve", "--config", str(tmp_path / "nope.toml"))
    assert (
        done.returncode == 2
        and done.stderr.startswith("gp-loss: cannot read --config")
        and done.stderr.count("\n") == 1
    )


def test_flags_override_the_file_and_show_prints_what_the_run_used(tmp_path):
    config = tmp_path / "search.toml"
    config.write_text(
        'task = "cls_digits"\nmax-explored = 12\npopulation = 6\ncache = "off"\nquiet = true\n'
        "no_gec = true\n\n[task_options]\nsteps = 40\n"
    )
    run = tmp_path / "run"
    done = call_cli(
        "evolve", "--config", str(config), "--population", "4", "--task-option", "steps=30", "--out", str(run)
    )
    assert done.returncode == 0, done.stderr
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["evolution"]["population_size"] == 4  # the flag wins
    assert recorded["limits"]["max_explored"] == 12 and recorded["pipeline"]["gec"] is False  # the file's
    assert recorded["task_options"]["steps"] == 30
    assert recorded["config"]["file"] == str(config.resolve())
    assert recorded["config"]["options"]["population"] == 4 and recorded["config"]["task_options"] == {
        "steps": 30
    }

    shown = call_cli("show", str(run))
    assert shown.returncode == 0
    block = shown.stdout.split("`evolve --config` reads this back):\n", 1)[1]
    again = tomllib.loads(block)
    assert again["population"] == 4 and again["max-explored"] == 12 and again["task_options"] == {"steps": 30}
    (tmp_path / "again.toml").write_text(block)
    rerun = call_cli("evolve", "--config", str(tmp_path / "again.toml"), "--out", str(tmp_path / "rerun"))
    assert rerun.returncode == 0, rerun.stderr
    assert (
        json.loads((tmp_path / "rerun" / "run.json").read_text())["config"]["options"]
        == recorded["config"]["options"]
    )


def test_resume_refuses_a_config_file(tmp_path):
    config = tmp_path / "search.toml"
    config.write_text("max-explored = 5\n")
    done = call_cli("evolve", "--resume", "--config", str(config), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert (
        done.stderr == "gp-loss: --config starts a run; a resumed run keeps the settings its run.json holds\n"
    )
