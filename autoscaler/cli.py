"""The ``autoscaler`` command: run, once, sample, explain, check, simulate, tune."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from autoscaler import __version__
from autoscaler.clock import Clock, SystemClock, accelerated
from autoscaler.durations import format_ms
from autoscaler.model import Reading
from autoscaler.ports import (
    AutoscalerError,
    ConfigError,
    Lock,
    Platform,
    Source,
    SourceError,
    StateStore,
)
from autoscaler.redact import redact, register_secret

# The daemon's modules (pydantic, structlog, prometheus-client, ...) are imported where they are
# used: `autoscaler --help` and usage errors load no third-party package, and an app-side install
# (without the [daemon] extra) gets a message saying what to install instead of a traceback.
if TYPE_CHECKING:
    from autoscaler.config import Settings
    from autoscaler.loop import Autoscaler, TickReport

DAEMON_MODULES = frozenset(
    {"pydantic", "pydantic_core", "pydantic_settings", "dotenv", "structlog", "prometheus_client"}
    | {"httpx", "apscheduler", "psycopg"}
)
DAEMON_EXTRA_HINT = (
    "the daemon's dependencies are not installed (no module named {name!r}): "
    "pip install 'queue-autoscaler[daemon]'"
)

EXIT_OK, EXIT_UNEXPECTED, EXIT_CONFIG, EXIT_DEPENDENCY = 0, 1, 2, 3


def _fail(code: int, message: object) -> int:
    """Say what went wrong on stderr and return the exit status for it."""
    print(f"autoscaler: {message}", file=sys.stderr)
    return code


SIM_BANNER = (
    "running on the built-in simulated app (AUTOSCALER_PLATFORM=sim, {speed:g}x accelerated "
    "time); to scale a real app set AUTOSCALER_PLATFORM (heroku, render, fly or railway) and its "
    "API token, see docs/platforms.md"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage errors exit 2 without a traceback
        self.print_usage(sys.stderr)
        print(f"autoscaler: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the top level takes only flags)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; the simulator's options are built only when its command is named."""
    parser = _Parser(prog="autoscaler", description=__doc__)
    parser.add_argument("--version", action="version", version=f"autoscaler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("run", help="the daemon", **_help("run", "the daemon"))
    for name, text in (
        ("once", "one tick: sample, decide, act (dry run respected); print the decisions"),
        ("sample", "poll every source once and print each signal; changes nothing"),
        ("explain", "like once, but never writes: each decision and its reason in a sentence"),
    ):
        p = sub.add_parser(name, help=text, **_help(name, text))
        p.add_argument("--json", action="store_true", help="print JSON")
    text = "validate the config and reach every dependency read-only"
    sub.add_parser("check", help=text, **_help("check", text))
    dash = sub.add_parser(
        "dashboard",
        help="serve the read-only dashboard page from the daemon's history store",
        description="Serve the dashboard (queue time, rate, instances and every scale event over "
        "the last 1 h to 14 d) from the store the daemon writes: REDIS_URL, else DATABASE_URL "
        "(AUTOSCALER_HISTORY says which). Example: heroku run -a myapp autoscaler dashboard, or "
        "REDIS_URL=... autoscaler dashboard --port 8080 on a laptop.",
    )
    hist = sub.add_parser(
        "history",
        help="the daemon's recorded history: export the arrival rate as a trace",
        description="Work with the history the daemon records (REDIS_URL, else DATABASE_URL).",
    )
    hsub = hist.add_subparsers(dest="history_command", required=True, parser_class=_Parser)
    export = hsub.add_parser(
        "export",
        help="write a process's arrival rate as a trace CSV, with the app model fitted from it",
        description="Write the recorded arrival rate of a process as a trace CSV that simulate "
        "and tune read, and print the app model fitted from the history (service time, slots, "
        "boot time) on stderr. Example: autoscaler history export --process web --since 7d "
        "--output web-7d.csv",
    )
    export.add_argument("--process", required=True, help="the process (web)")
    export.add_argument("--since", default="7d", help="how far back (7d; 1h, 36h, 14d ...)")
    export.add_argument("--output", metavar="FILE", help="write here (default: standard output)")
    dash.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dash.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs AUTOSCALER_DASHBOARD_TOKEN)",
    )
    simulate = sub.add_parser("simulate", help="replay a traffic trace through a model of the app")
    tune = sub.add_parser("tune", help="search the cheapest settings that meet an SLO")
    if command in ("simulate", "tune"):
        sim_commands = _optional("autoscaler.sim.commands")
        if sim_commands is not None:
            sim_commands.add_simulate_arguments(simulate)
            sim_commands.add_tune_arguments(tune)
    return parser


def _help(command: str, text: str) -> dict[str, Any]:
    """A command's description and its epilog: the variables it reads and an example."""
    from autoscaler.clihelp import EPILOG

    return {
        "description": text,
        "epilog": EPILOG[command],
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command_of(argv)).parse_args(argv)
    try:
        return _main(args)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in DAEMON_MODULES:
            raise
        return _fail(EXIT_CONFIG, DAEMON_EXTRA_HINT.format(name=exc.name))


def _main(args: argparse.Namespace) -> int:
    if args.command == "dashboard":  # these read the history store, not the daemon's config
        return cmd_dashboard(args)
    if args.command == "history":
        return cmd_history(args)
    if args.command in ("simulate", "tune"):
        sim_commands = _optional("autoscaler.sim.commands")
        run = sim_commands.run_simulate if args.command == "simulate" else sim_commands.run_tune
        return int(run(args))
    from autoscaler import logs
    from autoscaler.config import load

    try:
        settings = load()
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, exc)
    for secret in _secrets(settings):
        register_secret(secret)
    logs.configure(settings.glob.log_format, settings.glob.log_level)
    log = logs.get()
    for warning in settings.warnings:
        log.warning("config_warning", detail=warning)
    try:
        handler = {
            "run": cmd_run,
            "once": cmd_once,
            "sample": cmd_sample,
            "explain": cmd_explain,
            "check": cmd_check,
        }[args.command]
        return handler(settings, args)
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, redact(str(exc)))
    except AutoscalerError as exc:
        return _fail(EXIT_DEPENDENCY, redact(str(exc)))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        return _fail(EXIT_UNEXPECTED, f"unexpected {type(exc).__name__}: {redact(str(exc))}")


def _secrets(settings: Settings) -> list[str | None]:
    """Values never to log: every token, key, secret and DSN the environment holds."""
    secret = ("_TOKEN", "_API_KEY", "_SECRET", "_DSN")
    return [v.strip() for k, v in settings.env.items() if k.endswith(secret)]


# ---- building the pieces ------------------------------------------------------------------


def clock_for(settings: Settings) -> Clock:
    if settings.glob.platform == "sim":
        return accelerated(settings.glob.sim_speed)
    return SystemClock()


def build_platform(settings: Settings) -> Platform:
    from autoscaler.registry import build_platform as build

    return build(settings)


def build_sources(settings: Settings) -> dict[str, Source]:
    from autoscaler.registry import build_source

    problems: dict[str, str] = {}
    sources: dict[str, Source] = {}
    for name, process in settings.processes.items():
        try:
            sources[name] = build_source(settings, process)
        except ConfigError as exc:
            problems.update(exc.problems)
    if problems:
        for source in sources.values():
            source.close()
        raise ConfigError(problems)
    return sources


def lock_kind(settings: Settings) -> str:
    return settings.lock_kind


def build_lock(settings: Settings) -> Lock | None:
    from autoscaler.registry import build_lock as build

    kind = lock_kind(settings)
    return None if kind == "none" else build(settings, kind)


def build_state_store(settings: Settings) -> StateStore | None:
    """Where the policy's learned state is kept: beside the lock (none without one)."""
    from autoscaler.registry import build_state_store as build

    kind = lock_kind(settings)
    return None if kind == "none" else build(settings, kind)


def summary_every(settings: Settings) -> float:
    """Seconds of the daemon's clock between summary lines: ten minutes of the reader's time
    (on the simulated app, whose clock runs ``AUTOSCALER_SIM_SPEED`` times faster, as many
    more)."""
    from autoscaler.loop import SUMMARY_EVERY_S

    speed = settings.glob.sim_speed if settings.glob.platform == "sim" else 1.0
    return SUMMARY_EVERY_S * speed


def build_autoscaler(settings: Settings, **kwargs: Any) -> Autoscaler:
    sources = build_sources(settings)
    try:
        platform = build_platform(settings)
    except BaseException:
        for source in sources.values():
            source.close()
        raise
    from autoscaler.loop import Autoscaler

    kwargs.setdefault("summary_every", summary_every(settings))
    return Autoscaler(settings, platform, sources, clock_for(settings), **kwargs)


# ---- commands -----------------------------------------------------------------------------


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from autoscaler import logs

    log = logs.get()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("shutdown", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(settings, log, stop)
    finally:  # a caller that runs ``run`` in-process gets its handlers back
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(settings: Settings, log: Any, stop: threading.Event) -> int:
    from apscheduler.schedulers.background import BackgroundScheduler

    from autoscaler.metrics import HealthState, Metrics, serve

    g = settings.glob
    if g.platform == "sim":
        log.info("startup", detail=SIM_BANNER.format(speed=g.sim_speed))
    else:
        log.info(
            "startup",
            platform=g.platform,
            processes=",".join(settings.processes),
            dry_run=g.dry_run,
            interval=g.interval,
        )
    metrics = Metrics()
    clock = clock_for(settings)
    speed = g.sim_speed if g.platform == "sim" else 1.0
    health = HealthState(max_age=3 * g.interval, clock=clock)
    lock = build_lock(settings)
    alerts = _build_alerts_and_history(settings, log)
    scaler = build_autoscaler(
        # no write is sent once a signal has arrived
        settings,
        lock=lock,
        metrics=metrics,
        health=health,
        alerts=alerts,
        log=log,
        stopping=stop,
        store=build_state_store(settings),
    )
    server = serve(metrics, health, g.metrics_host, g.metrics_port) if g.metrics_port else None
    dashboard = _serve_dashboard(settings, alerts, log)

    interval = g.interval / speed
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        scaler.tick,
        "interval",
        seconds=interval,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(interval)),
        next_run_time=None,
        id="tick",
    )
    scheduler.start()
    scheduler.modify_job("tick", next_run_time=_utcnow())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown(wait=False)
        # finish (or abandon) the running tick: it sends no write once stopping is set
        idle = scaler.idle(8.0)
        scaler.close()
        if alerts is not None:
            alerts.close()  # deliver the alerts still queued
        if server is not None:
            server.shutdown()
        if dashboard is not None:
            dashboard.shutdown()
        log.info("stopped")
    if not idle:  # a tick is stuck in I/O: do not wait for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def _serve_dashboard(settings: Settings, hook: Any, log: Any) -> Any:
    """``AUTOSCALER_DASHBOARD_PORT``: the daemon serves the dashboard over its own history (the
    only way to see the ``sim`` platform's, which lives in memory)."""
    raw = (settings.env.get("AUTOSCALER_DASHBOARD_PORT") or "").strip()
    store = getattr(hook, "store", None)
    if not raw or store is None:
        return None
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ConfigError({"AUTOSCALER_DASHBOARD_PORT": f"{raw!r} is not a port (0 to 65535)"})
    from autoscaler.dashboard import DashboardApp
    from autoscaler.dashboard.serve import serve as serve_dashboard

    host = (settings.env.get("AUTOSCALER_DASHBOARD_HOST") or "127.0.0.1").strip()
    token = (settings.env.get("AUTOSCALER_DASHBOARD_TOKEN") or "").strip() or None
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        raise ConfigError(
            {"AUTOSCALER_DASHBOARD_HOST": "an address other than loopback needs a token"}
        )
    httpd = serve_dashboard(DashboardApp(store, token=token), host, int(raw))
    log.info("dashboard", url=f"http://{host}:{httpd.server_port}/")
    return httpd


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _optional(module: str) -> Any:
    """A module that a later part of the product adds, or ``None`` while it is absent."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module and not module.startswith(str(exc.name) + "."):
            raise
        return None


def _build_alerts(settings: Settings) -> Any:
    alerts = _optional("autoscaler.alerts")
    return None if alerts is None else alerts.build(settings)


def _build_alerts_and_history(settings: Settings, log: Any) -> Any:
    """The alerts, wrapped by the history recorder where a history store is configured (it
    keeps every tick, every change and every alert for the dashboard)."""
    from autoscaler import alerts, recording
    from autoscaler.registry import open_history_store

    try:
        store = open_history_store(settings.env)
    except ValueError as exc:
        raise ConfigError({"AUTOSCALER_HISTORY": str(exc)}) from None
    if store is None:
        if settings.glob.digest == "weekly":
            raise ConfigError(
                {
                    "AUTOSCALER_DIGEST": "weekly needs a history store (REDIS_URL or "
                    "DATABASE_URL; AUTOSCALER_HISTORY is off)"
                }
            )
        return alerts.build(settings)
    hook = recording.HistoryHook(settings, store, log, simulated=settings.glob.platform == "sim")
    hook.then = alerts.build(settings, also=hook.alert)
    if settings.glob.digest == "weekly":
        webhook = getattr(hook.then, "webhook", None)
        if webhook is None:
            store.close()
            raise ConfigError({"AUTOSCALER_DIGEST": "weekly needs AUTOSCALER_NOTIFY_URL"})
        hook.digest_to = webhook
    return hook


def _reading_json(reading: Reading | SourceError, metric: str) -> dict[str, Any]:
    if isinstance(reading, SourceError):
        return {
            "metric": metric,
            "value_ms": None,
            "ok": False,
            "samples": 0,
            "queues": {},
            "error": redact(str(reading)),
            "age_s": None,
            "depth": None,
            "busy": None,
            "finished": None,
            "in_use": None,
        }
    return {
        "metric": reading.metric.value,
        "value_ms": reading.value_ms,
        "ok": reading.value_ms is not None,
        "samples": reading.samples,
        "queues": dict(reading.queues),
        "error": None if reading.value_ms is not None else (reading.warning or "no data"),
        "age_s": reading.age_s,
        "depth": reading.depth,
        "busy": reading.busy,
        "finished": reading.finished,
        "in_use": reading.in_use,
        **({"warning": reading.warning} if reading.warning else {}),
    }


def cmd_sample(settings: Settings, args: argparse.Namespace) -> int:
    sources = build_sources(settings)
    try:
        clock = clock_for(settings)
        out: dict[str, Any] = {}
        failed = False
        for name, source in sources.items():
            try:
                reading: Reading | SourceError = source.sample(clock.now().wall)
            except SourceError as exc:
                reading = exc
            out[name] = _reading_json(reading, settings.processes[name].metric.value)
            failed = failed or not out[name]["ok"]
    finally:
        for source in sources.values():
            source.close()
    if args.json:
        print(json.dumps({"processes": out}, indent=2))
    else:
        for name, item in out.items():
            p = settings.processes[name]
            if item["error"] and item["value_ms"] is None:
                print(f"{name}: {p.source} FAILED: {item['error']}")
                continue
            age = "" if item["age_s"] is None else f", newest {item['age_s']:.1f}s old"
            print(
                f"{name}: {p.aggregate} {item['metric']} {format_ms(item['value_ms'])} "
                f"({item['samples']} samples{age})"
            )
            for queue, value in sorted(item["queues"].items()):
                print(f"  {queue}: {format_ms(value)}")
    return EXIT_DEPENDENCY if failed else EXIT_OK


def _decisions_json(report: TickReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "leader": report.is_leader,
        "epoch": report.epoch,
        "platform_error": report.platform_error,
        "read_errors": report.read_errors,
        "write_error": report.write_error,
        "writes": report.writes,
        "decisions": [
            {
                "process": d.process,
                "action": d.action.value,
                "current": d.current,
                "desired": d.desired,
                "signal_ms": d.signal_ms,
                "status": d.status.value,
                "reason": d.reason.value,
                "outcome": report.outcomes[d.process].value
                if d.process in report.outcomes
                else None,
                "bounds": [d.low, d.high],
                "error": report.source_errors.get(d.process),
            }
            for d in report.decisions
        ],
    }


def _one_tick(settings: Settings, args: argparse.Namespace, *, write: bool) -> int:
    from autoscaler import logs
    from autoscaler.explain import sentence

    lock = build_lock(settings) if write else None
    scaler = build_autoscaler(settings, lock=lock, log=logs.get())
    try:
        report = scaler.tick(write=write)
    finally:
        scaler.close()
    if args.json:
        print(json.dumps(_decisions_json(report), indent=2))
    else:
        for d in report.decisions:
            p = settings.processes[d.process]
            print(sentence(d, p, report.source_errors.get(d.process)))
        if report.platform_error:
            print(f"platform: {report.platform_error}")
        if report.write_error:
            print(f"write: {report.write_error}")
        if write and not report.is_leader:
            print("another daemon holds the lock: nothing was written")
    if report.platform_error or report.source_errors:
        return EXIT_DEPENDENCY
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted. Reads only the history store's config vars."""
    from autoscaler.config import read_env
    from autoscaler.dashboard import DashboardApp
    from autoscaler.dashboard.serve import serve
    from autoscaler.registry import open_history_store

    env = {**read_env(), **os.environ}
    token = (env.get("AUTOSCALER_DASHBOARD_TOKEN") or "").strip() or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(
            "autoscaler: --host other than loopback needs AUTOSCALER_DASHBOARD_TOKEN",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        store = open_history_store(env)
    except ValueError as exc:
        return _fail(EXIT_CONFIG, exc)
    if store is None or store_is_memory(store):
        print(
            "autoscaler: no shared history store: set REDIS_URL or DATABASE_URL as the daemon has "
            "them (on the sim platform, run the daemon with AUTOSCALER_DASHBOARD_PORT instead)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        httpd = serve(DashboardApp(store, token=token), args.host, args.port)
    except OSError as exc:
        return _fail(EXIT_DEPENDENCY, f"cannot listen on {args.host}:{args.port}: {exc}")
    print(f"dashboard: http://{args.host}:{httpd.server_port}/ (Ctrl-C stops it)", flush=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        httpd.shutdown()
        store.close()
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """``history export``: the trace and the fitted model, from the store the daemon writes."""
    from autoscaler.config import read_env
    from autoscaler.durations import parse_duration
    from autoscaler.sim.owntraffic import export_from_env

    env = {**read_env(), **os.environ}
    try:
        since = parse_duration(args.since, "s")
        text, fit, _ = export_from_env(env, args.process, since)
    except ValueError as exc:
        return _fail(EXIT_CONFIG, exc)
    except Exception as exc:
        return _fail(EXIT_DEPENDENCY, f"the history store cannot be read: {redact(str(exc))}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {text.count(chr(10)) - 1} minutes to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(fit.describe(), file=sys.stderr)
    return EXIT_OK


def store_is_memory(store: object) -> bool:
    return type(store).__name__ == "MemoryStore"


def cmd_once(settings: Settings, args: argparse.Namespace) -> int:
    return _one_tick(settings, args, write=True)


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    return _one_tick(settings, args, write=False)


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    """One line per dependency, the config's warnings, then one verdict."""
    print(f"config: {len(settings.processes)} processes: {', '.join(settings.processes)}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    failed: list[str] = []
    refused: dict[str, str] = {}  # configuration errors found by reaching a dependency

    def attempt(what: str, run: Any) -> None:
        try:
            print(f"{what}: {run()}")
        except ConfigError as exc:
            failed.append(what)
            refused.update(exc.problems)
            print(f"{what}: FAILED: {redact(str(exc))}")
        except Exception as exc:
            failed.append(what)
            print(f"{what}: FAILED: {redact(str(exc))}")

    def platform_line() -> str:
        platform = build_platform(settings)
        dry = " (dry run: writes are not sent)" if settings.glob.dry_run else ""
        try:
            return platform.check(list(settings.processes)) + dry
        finally:
            platform.close()

    attempt(f"platform {settings.glob.platform}", platform_line)
    for name, process in settings.processes.items():

        def source_line(process: Any = process) -> str:
            from autoscaler.registry import build_source

            source = build_source(settings, process)
            try:
                return source.check()
            finally:
                source.close()

        attempt(f"source {name} ({process.source})", source_line)
    kind = lock_kind(settings)
    if kind == "none":
        print("lock: none (run a single copy of the daemon)")
    else:

        def lock_line() -> str:
            lock = build_lock(settings)
            assert lock is not None
            try:
                return lock.check()
            finally:
                lock.close()

        attempt(f"lock {kind}", lock_line)
    notes = f" ({len(settings.warnings)} warning(s) above)" if settings.warnings else ""
    if failed:
        print(f"check: FAILED: {', '.join(failed)}{notes}")
        if refused:
            return _fail(EXIT_CONFIG, redact(str(ConfigError(refused))))
        return EXIT_DEPENDENCY
    print(f"check: ok{notes}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
