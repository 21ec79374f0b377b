"""Bad input: every variable given garbage, empty, negative or absurd values exits 2 with a
message naming it, never a traceback."""

from __future__ import annotations

import pytest

from autoscaler.cli import main
from autoscaler.config import load
from autoscaler.policy import DEFAULT_DOWN_DELAY
from autoscaler.ports import ConfigError

GLOBAL_BAD = {
    "AUTOSCALER_PLATFORM": ["", "aws", "123"],
    "AUTOSCALER_PROCESSES": ["", "web,,worker", "Web!", "web,web"],
    "AUTOSCALER_DRY_RUN": ["", "maybe", "2"],
    "AUTOSCALER_INTERVAL": ["", "abc", "-5s", "0", "10y", "1e400", "99999h"],
    "AUTOSCALER_TICK_TIMEOUT": ["", "0", "soon"],
    "AUTOSCALER_LOG_FORMAT": ["", "xml"],
    "AUTOSCALER_LOG_LEVEL": ["", "loud"],
    "AUTOSCALER_METRICS_PORT": ["", "0", "-1", "70000", "http"],
    "AUTOSCALER_LOCK": ["", "zookeeper"],
    "AUTOSCALER_NOTIFY_URL": ["", "not a url"],
    "AUTOSCALER_TIMEZONE": ["Mars/Olympus", "../../etc/passwd"],
    "AUTOSCALER_SIM_SPEED": ["", "0", "-3", "fast", "1e9"],
    "REDIS_URL": ["", "localhost:6379"],
    "DATABASE_URL": ["", "postgres"],
    "AUTOSCALER_ALERT_AFTER": ["", "nan", "soon", "-1m", "8d"],
    "AUTOSCALER_DRYRUN": ["true"],  # a typo of a global is an error too
}

HEROKU = {"AUTOSCALER_PLATFORM": "heroku", "HEROKU_API_TOKEN": "t", "HEROKU_APP_NAME": "app"}
ADAPTER_BAD = {  # an adapter's own variables, with that adapter configured
    "HEROKU_API_URL": ["", "api.heroku.com"],
    "HEROKU_APP_NAME": ["", "My_App"],
    "AUTOSCALER_LOCK_TTL": ["", "soon", "1s"],
    "AUTOSCALER_LOCK_NAME": ["", "a b"],
}

PROCESS_BAD = {
    "MIN": ["", "-1", "one", "2.5", "99999999"],
    "MAX": ["", "0", "-4", "ten", "1e3"],
    "SOURCE": ["", "kafka"],
    "QUEUES": ["", "a,,b"],
    "UP_THRESHOLD": ["", "0", "-1s", "fast", "9999h"],
    "DOWN_THRESHOLD": ["", "-1", "slow"],
    "AGGREGATE": ["", "p42", "median"],
    "WINDOW": ["", "0", "-1", "2h", "x"],
    "UP_STEP": ["", "0", "-1", "big", "auto2"],
    "DOWN_STEP": ["", "0", "-2", "auto"],
    "UP_SENSITIVITY": ["", "-1", "soon"],
    "UP_COOLDOWN": ["", "-60", "later", "1e400", "auto2"],
    "DOWN_DELAY": ["", "-5m", "forever"],
    "HEADROOM": ["", "-1", "11", "wide", "nan", "inf"],
    "SCHEDULE": [
        "",
        "mon-fri min=x",
        "funday 08:00-18:00 min=2",
        "mon 25:00-26:00 min=1",
        "mon-fri 08:00-18:00",
        "min=5 max=2",
        "noon min=1",
    ],
    "MIN_SAMPLES": ["", "-1", "few"],
}


def _cases():
    for var, values in GLOBAL_BAD.items():
        for value in values:
            yield var, {var: value}, var
    for suffix, values in PROCESS_BAD.items():
        for value in values:
            var = f"AUTOSCALER_WEB_{suffix}"
            yield var, {var: value}, var
    for var, values in ADAPTER_BAD.items():
        for value in values:
            yield var, {**HEROKU, "REDIS_URL": "redis://127.0.0.1:1", var: value}, var


CASES = list(_cases())


@pytest.mark.parametrize(
    ("env", "var"), [c[1:] for c in CASES], ids=[f"{c[0]}={c[1][c[0]]!r}" for c in CASES]
)
def test_bad_value_names_the_variable(env, var):
    with pytest.raises(ConfigError) as info:
        load(env)
    assert var in info.value.problems


@pytest.mark.parametrize(
    ("env", "var"), [c[1:] for c in CASES[::7]], ids=[f"{c[0]}={c[1][c[0]]!r}" for c in CASES[::7]]
)
def test_cli_exits_2_without_traceback(env, var, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert var in err
    assert "Traceback" not in err


def test_cross_field_checks():
    with pytest.raises(ConfigError) as info:
        load({"AUTOSCALER_WEB_MIN": "5", "AUTOSCALER_WEB_MAX": "2"})
    assert "AUTOSCALER_WEB_MIN" in info.value.problems
    with pytest.raises(ConfigError) as info:
        load({"AUTOSCALER_WEB_UP_THRESHOLD": "100ms", "AUTOSCALER_WEB_DOWN_THRESHOLD": "150ms"})
    assert "AUTOSCALER_WEB_DOWN_THRESHOLD" in info.value.problems
    with pytest.raises(ConfigError) as info:
        load({"AUTOSCALER_WEB_MAX": "3", "AUTOSCALER_WEB_SCHEDULE": "mon-fri min=5"})
    assert "AUTOSCALER_WEB_SCHEDULE" in info.value.problems


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load({"AUTOSCALER_INTERVAL": "x", "AUTOSCALER_WEB_MAX": "y", "AUTOSCALER_LOCK": "z"})
    assert {"AUTOSCALER_INTERVAL", "AUTOSCALER_WEB_MAX", "AUTOSCALER_LOCK"} <= set(
        info.value.problems
    )


def test_a_typo_in_a_managed_process_variable_is_an_error_with_a_hint():
    with pytest.raises(ConfigError) as info:
        load({"AUTOSCALER_WEB_UP_THRESHHOLD": "300ms"})
    assert "AUTOSCALER_WEB_UP_THRESHOLD" in info.value.problems["AUTOSCALER_WEB_UP_THRESHHOLD"]


def test_a_worker_needs_a_source_off_sim():
    with pytest.raises(ConfigError) as info:
        load({"AUTOSCALER_PLATFORM": "heroku", "AUTOSCALER_PROCESSES": "web,worker"})
    assert "AUTOSCALER_WORKER_SOURCE" in info.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("10m", 600.0), ("1h", 3600.0), ("45", 45.0)],
)
def test_durations(text, seconds):
    s = load({"AUTOSCALER_WEB_UP_COOLDOWN": text})
    assert s.processes["web"].up_cooldown == seconds


def test_defaults_follow_the_spec():
    s = load(
        {
            "AUTOSCALER_PLATFORM": "heroku",
            "HEROKU_API_TOKEN": "t",
            "HEROKU_APP_NAME": "app",
            "AUTOSCALER_PROCESSES": "web,worker",
            "AUTOSCALER_WORKER_SOURCE": "rq",
        }
    )
    web, worker = s.processes["web"], s.processes["worker"]
    assert (web.min, web.max, web.up_threshold_ms, web.down_threshold_ms, web.aggregate) == (
        1,
        10,
        200.0,
        50.0,
        "p95",
    )
    assert (worker.up_threshold_ms, worker.down_threshold_ms, worker.aggregate) == (
        10_000.0,
        2_000.0,
        "max",
    )
    assert (web.window, web.up_step, web.down_step, web.up_cooldown, web.down_delay) == (
        30.0,
        None,
        1,
        None,  # auto: the learned boot time
        DEFAULT_DOWN_DELAY,  # one default, whatever the policy has learned
    )
    assert (worker.down_delay, web.headroom, worker.headroom) == (DEFAULT_DOWN_DELAY, 1.8, 1.8)
    assert s.glob.interval == 5.0 and s.glob.lock == "auto" and not s.glob.dry_run


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    from autoscaler.config import read_env

    (tmp_path / ".env").write_text("AUTOSCALER_WEB_MAX=7\n")
    monkeypatch.delenv("AUTOSCALER_WEB_MAX", raising=False)
    assert load(read_env(tmp_path / ".env")).processes["web"].max == 7


@pytest.mark.parametrize(("value", "expected"), [("auto", None), (" AUTO ", None), ("45s", 45.0)])
def test_up_cooldown_is_learned_unless_set(value, expected):
    s = load({"AUTOSCALER_WEB_UP_COOLDOWN": value})
    assert s.processes["web"].up_cooldown == expected
