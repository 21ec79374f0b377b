"""The ``--help`` epilogs: which variables each command reads, and a worked example.

Plain text and the standard library only, so that ``--help`` stays fast. The full list of
variables, generated from the settings models, is in docs/configuration.md.
"""

from __future__ import annotations

_DAEMON_VARS = """\
variables read (config vars, and a .env file in the working directory; unknown AUTOSCALER_*
names are an error):
  AUTOSCALER_PLATFORM, AUTOSCALER_PROCESSES, AUTOSCALER_DRY_RUN, AUTOSCALER_INTERVAL,
  AUTOSCALER_TICK_TIMEOUT, AUTOSCALER_LOG_FORMAT, AUTOSCALER_LOG_LEVEL, AUTOSCALER_TIMEZONE,
  REDIS_URL, DATABASE_URL; per process AUTOSCALER_<P>_MIN, _MAX, _SOURCE, _UP_THRESHOLD,
  _DOWN_THRESHOLD, _WINDOW, ... (docs/configuration.md); the platform's own (HEROKU_API_TOKEN
  and HEROKU_APP_NAME, RENDER_API_KEY and AUTOSCALER_<P>_RENDER_SERVICE_ID, FLY_API_TOKEN and
  FLY_APP_NAME, RAILWAY_API_TOKEN, RAILWAY_ENVIRONMENT_ID and AUTOSCALER_<P>_RAILWAY_SERVICE_ID)
  and each source's own (AUTOSCALER_<P>_QUEUES, ...)."""

_RUN_ONLY = """\
  run also reads AUTOSCALER_METRICS_PORT, AUTOSCALER_METRICS_HOST, AUTOSCALER_LOCK (and
  AUTOSCALER_LOCK_TTL, _NAME, _URL, _SCHEMA), AUTOSCALER_NOTIFY_URL, AUTOSCALER_ALERT_AFTER,
  SENTRY_DSN."""

_EXAMPLE = """\
example (Heroku, web and an rq worker; thresholds take units: 200ms, not 200):
  export AUTOSCALER_PLATFORM=heroku HEROKU_API_TOKEN=... HEROKU_APP_NAME=my-app
  export AUTOSCALER_PROCESSES=web,worker AUTOSCALER_WEB_MAX=8 AUTOSCALER_WEB_UP_THRESHOLD=200ms
  export AUTOSCALER_WORKER_SOURCE=rq AUTOSCALER_WORKER_MIN=0 AUTOSCALER_WORKER_MAX=4
  autoscaler {command}"""

EPILOG = {
    "run": f"{_DAEMON_VARS}\n{_RUN_ONLY}\n\n{_EXAMPLE.format(command='check && autoscaler run')}",
    "once": f"{_DAEMON_VARS}\n  once also reads AUTOSCALER_LOCK and its variables.\n\n"
    + _EXAMPLE.format(command="once --json"),
    "sample": f"{_DAEMON_VARS}\n\n{_EXAMPLE.format(command='sample')}",
    "explain": f"{_DAEMON_VARS}\n\n{_EXAMPLE.format(command='explain')}",
    "check": f"{_DAEMON_VARS}\n{_RUN_ONLY}\n\ncheck validates every variable (exit 2 and each "
    "offending variable named), reaches the platform, each source and the lock read-only (exit 3 "
    "if one fails), and ends with one verdict line.\n\n" + _EXAMPLE.format(command="check"),
}
