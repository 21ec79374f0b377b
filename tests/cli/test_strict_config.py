"""Strict config (issue 13 item 5) and its edge cases (issue 14 item 17): unknown variables,
settings of unmanaged processes, implausible bare thresholds, plain integers, one verdict, the
project's own words, and one validation for ``check`` and ``run``."""

from __future__ import annotations

import pytest

from autoscaler.cli import main
from autoscaler.config import load
from autoscaler.ports import ConfigError

HEROKU = {"AUTOSCALER_PLATFORM": "heroku", "HEROKU_API_TOKEN": "t", "HEROKU_APP_NAME": "app"}


def _problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load(env)
    return info.value.problems


@pytest.mark.parametrize(
    ("var", "hint"),
    [
        ("AUTOSCALER_DRYRUN", "AUTOSCALER_DRY_RUN"),
        ("AUTOSCALER_INTERVALL", "AUTOSCALER_INTERVAL"),
        ("AUTOSCALER_WEB_UP_THRESHHOLD", "AUTOSCALER_WEB_UP_THRESHOLD"),
        ("AUTOSCALER_LOCK_TTLL", "AUTOSCALER_LOCK_TTL"),
    ],
)
def test_an_unknown_variable_is_an_error_with_a_suggestion(var: str, hint: str) -> None:
    problems = _problems({var: "true"})
    assert list(problems) == [var] and f"did you mean {hint}?" in problems[var]


def test_an_unknown_global_exits_2_from_the_cli(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_DRYRUN", "true")
    assert main(["check"]) == 2
    assert "AUTOSCALER_DRY_RUN" in capsys.readouterr().err


def test_settings_of_a_process_not_managed_say_to_add_it() -> None:
    problems = _problems({**HEROKU, "AUTOSCALER_WORKER_MAX": "4"})
    why = problems["AUTOSCALER_WORKER_MAX"]
    assert "AUTOSCALER_PROCESSES" in why and "web,worker" in why


def test_a_variable_of_another_source_names_the_sources_that_read_it() -> None:
    env = {
        **HEROKU,
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "sql",
        "AUTOSCALER_WORKER_SQL": "select 1",
        "AUTOSCALER_WORKER_KEY_PREFIX": "x",
    }
    why = _problems(env)["AUTOSCALER_WORKER_KEY_PREFIX"]
    assert "SOURCE=sql" in why and "source rq" in why


def test_the_variables_the_configuration_reads_are_accepted() -> None:
    env = {
        **HEROKU,
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "AUTOSCALER_WORKER_KEY_PREFIX": "myrq",
        "AUTOSCALER_WORKER_QUEUES": "a,b",
        "AUTOSCALER_LOCK_TTL": "30s",
        "AUTOSCALER_FLUSH_INTERVAL": "5s",  # read by the middleware in the app
        "REDIS_URL": "redis://127.0.0.1:1",
    }
    settings = load(env)
    assert settings.lock_kind == "redis" and settings.warnings == []


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("AUTOSCALER_WEB_MIN", "1_0"),
        ("AUTOSCALER_WEB_MAX", "1e3"),
        ("AUTOSCALER_WEB_DOWN_STEP", "+2"),
        ("AUTOSCALER_METRICS_PORT", "9_090"),
    ],
)
def test_integers_are_plain_digits(var: str, value: str) -> None:
    why = _problems({var: value})[var]
    assert repr(value) in why and "plain digits" in why


@pytest.mark.parametrize(
    ("env", "var", "words"),
    [
        ({"AUTOSCALER_WEB_MAX": "20000"}, "AUTOSCALER_WEB_MAX", ["20000", "instances", "10000"]),
        ({"AUTOSCALER_INTERVAL": "2h"}, "AUTOSCALER_INTERVAL", ["'2h'", "1s", "1h"]),
        ({"AUTOSCALER_WEB_HEADROOM": "11"}, "AUTOSCALER_WEB_HEADROOM", ["11", "0", "10"]),
        ({"AUTOSCALER_LOG_LEVEL": "loud"}, "AUTOSCALER_LOG_LEVEL", ["'loud'", "debug"]),
    ],
)
def test_messages_name_the_value_the_unit_and_the_range(env, var, words) -> None:
    why = _problems(env)[var]
    assert [w for w in words if w not in why] == []
    assert "Input should" not in why


def test_a_bare_threshold_implausible_as_seconds_warns_with_the_ms_reading(
    monkeypatch, capsys, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_PROCESSES", "web")
    monkeypatch.setenv("AUTOSCALER_WEB_UP_THRESHOLD", "200")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "AUTOSCALER_WEB_UP_THRESHOLD=200 is read as 200 seconds" in out
    assert "write 200ms" in out


def test_plausible_thresholds_do_not_warn() -> None:
    env = {"AUTOSCALER_WEB_UP_THRESHOLD": "0.3", "AUTOSCALER_WEB_DOWN_THRESHOLD": "50ms"}
    assert load(env).warnings == []


def test_check_prints_one_verdict_when_a_dependency_fails(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in {**HEROKU, "HEROKU_API_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9")
    monkeypatch.setenv("AUTOSCALER_LOCK", "none")
    assert main(["check"]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith(("check:", "config: ok"))] == [lines[-1]]
    assert lines[-1].startswith("check: FAILED")


# ---- issue 14 item 17 ----------------------------------------------------------------------------


def test_check_refuses_a_nan_alert_delay_as_run_does(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_ALERT_AFTER", "nan")
    assert main(["check"]) == 2
    assert "AUTOSCALER_ALERT_AFTER" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "NaN"])
def test_numbers_are_finite(value: str) -> None:
    assert "AUTOSCALER_WEB_HEADROOM" in _problems({"AUTOSCALER_WEB_HEADROOM": value})


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("AUTOSCALER_WEB_MIN", "\u00a05\u00a0"),
        ("AUTOSCALER_INTERVAL", "10s\u00a0"),
        ("AUTOSCALER_DRY_RUN", "\u200btrue"),
        ("HEROKU_APP_NAME", "app\u00a0"),
    ],
)
def test_a_value_with_a_non_breaking_space_is_refused(var: str, value: str) -> None:
    why = _problems({**HEROKU, var: value})[var]
    assert "invisible character" in why


def test_plain_blanks_around_a_value_are_trimmed() -> None:
    assert load({"AUTOSCALER_WEB_MIN": " 2 "}).processes["web"].min == 2


# ---- --help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "once", "sample", "explain", "check"])
def test_help_lists_the_variables_and_a_worked_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "AUTOSCALER_PLATFORM" in out and "AUTOSCALER_<P>_MAX" not in out
    assert "variables read" in out and "example" in out and "200ms" in out


def test_the_start_line_warns_about_an_implausible_bare_threshold(
    monkeypatch, capsys, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_PROCESSES", "web")
    monkeypatch.setenv("AUTOSCALER_WEB_UP_THRESHOLD", "200")
    assert main(["sample"]) == 0
    captured = capsys.readouterr()
    logged = captured.err + captured.out
    assert "config_warning" in logged and "write 200ms" in logged
