"""Source ``http``: job latency polled from an endpoint in HireFire's JSON shape, so that an app
moving from HireFire keeps the endpoint it has (hirefire-resource's ``/hirefire/<token>/info``).

``AUTOSCALER_<P>_URL`` answers ``[{"name": "<process>", "value": <number>}, ...]``; the entry
whose ``name`` is the process type is read (other entries and keys are ignored). hirefire-resource
before December 2021 answered ``[{"name": ..., "quantity": <number>}]`` instead, and sent
``null`` when a macro failed: an entry without ``value`` is read from ``quantity``, and a
``null`` (in either) fails the poll for that process, never reads as 0. What the number means is
set by ``AUTOSCALER_<P>_HTTP_VALUE``:

- ``latency`` (default): the age of the oldest due job in **seconds**, which is what
  HireFire's job-queue-latency macros report;
- ``latency_ms``: the same in milliseconds;
- ``size``: a number of waiting jobs (HireFire's job-queue-size macros). The signal is then a
  count, read against the thresholds as 1 s = 1 job: ``UP_THRESHOLD=50`` scales up above 50
  waiting jobs. ``depth`` is that count.

``AUTOSCALER_<P>_HTTP_TOKEN``, when set, is sent as the ``HireFire-Token`` header.
``AUTOSCALER_<P>_HTTP_TIMEOUT`` (default 3s) bounds the whole request. Any answer other than
200 with that shape, a missing or repeated entry, a value that is not a finite number >= 0,
a body over 1 MiB, a refused connection or a timeout fails the poll with the reason: unknown
is never zero. Messages name the endpoint's scheme, host and port only, as the path often
holds a token.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import httpx
from pydantic import Field

from autoscaler.configkit import (
    Choice,
    DaemonConfig,
    Duration,
    EnvSettings,
    ProcessConfig,
    SourceAdapter,
    Text,
    Url,
    read,
)
from autoscaler.model import Metric, Reading
from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import redact, register_secret

DEFAULT_TIMEOUT_S = 3.0
MAX_BYTES = 1 << 20
UNITS = ("latency", "latency_ms", "size")


@dataclass(frozen=True, slots=True)
class HttpConfig:
    url: str
    origin: str  # scheme://host:port, for messages
    name: str  # the entry to read
    unit: str
    timeout_s: float
    token: str | None


class HttpSettings(EnvSettings):
    """The ``http`` source's variables (per process, ``AUTOSCALER_<P>_``)."""

    url: Url = Field(
        description='an endpoint answering `[{"name": "<process>", "value": <number>}]` '
        "(HireFire's format)"
    )
    http_value: Annotated[str, Choice(*UNITS)] = Field(
        "latency", description="what `value` means: seconds, milliseconds or a job count"
    )
    http_token: Text | None = Field(
        None, description="sent as the `HireFire-Token` header (hirefire-resource's `/hirefire`)"
    )
    http_timeout: Annotated[float, Duration(0.1, 60.0)] = Field(
        DEFAULT_TIMEOUT_S, description="bounds each request"
    )


def parse_config(
    env: Mapping[str, str], process: ProcessConfig, own: HttpSettings | None = None
) -> HttpConfig:
    """Pure: the URL and this source's own variables. Raises ``ConfigError``."""
    own = own or read(HttpSettings, env, process.var_prefix)
    parts = urllib.parse.urlsplit(own.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError({f"{process.var_prefix}URL": "must be an http:// or https:// URL"})
    for segment in [*parts.path.split("/"), parts.query]:
        if len(segment) >= 16:  # HireFire puts its token in the path
            register_secret(segment)
    register_secret(own.http_token)
    port = f":{parts.port}" if parts.port else ""
    origin = f"{parts.scheme}://{parts.hostname}{port}"
    return HttpConfig(
        own.url, origin, process.name, own.http_value, own.http_timeout, own.http_token
    )


def reading_from_body(body: bytes, name: str, unit: str) -> Reading:
    """Read the entry ``name`` from a HireFire JSON body. Pure; raises ``SourceError``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise SourceError(f"the answer is not JSON ({body[:60]!r})") from None
    if not isinstance(data, list):
        raise SourceError(
            f'the answer is a JSON {type(data).__name__}, not a list of {{"name", "value"}}'
        )
    found = [e for e in data if isinstance(e, dict) and e.get("name") == name]
    if not found:
        names = sorted({str(e.get("name")) for e in data if isinstance(e, dict)})
        raise SourceError(
            f"no entry named {name!r} in the answer (names: {', '.join(names) or 'none'})"
        )
    if len(found) > 1:
        raise SourceError(f"{len(found)} entries named {name!r} in the answer")
    entry = found[0]
    key = "value" if "value" in entry or "quantity" not in entry else "quantity"
    value = entry.get(key)
    if value is None and key in entry:
        raise SourceError(
            f"entry {name!r}: {key} is null (the endpoint could not read this queue); not read as 0"
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SourceError(f"entry {name!r}: value is not a number ({value!r:.60})")
    if not math.isfinite(value) or value < 0:
        raise SourceError(f"entry {name!r}: value {value!r} is not a finite number >= 0")
    if unit == "size":
        if value != int(value):
            raise SourceError(f"entry {name!r}: value {value!r} is not a whole number of jobs")
        jobs = int(value)
        return Reading(Metric.JOB_LATENCY, jobs * 1000.0, jobs, 0.0, {name: jobs * 1000.0}, jobs)
    ms = float(value) * (1.0 if unit == "latency_ms" else 1000.0)
    return Reading(Metric.JOB_LATENCY, ms, 1, 0.0, {name: ms})


class HttpSource:
    metric = Metric.JOB_LATENCY

    def __init__(self, config: HttpConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        headers = {"Accept": "application/json", "User-Agent": "autoscaler"}
        if config.token:
            headers["HireFire-Token"] = config.token
        self.client = client or httpx.Client(
            timeout=config.timeout_s, headers=headers, follow_redirects=False
        )

    def _get(self) -> bytes:
        where = self.config.origin
        try:
            with self.client.stream("GET", self.config.url) as resp:
                if resp.status_code != 200:
                    hint = " (redirects are not followed)" if resp.is_redirect else ""
                    raise SourceError(f"{where} answered {resp.status_code}{hint}")
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise SourceError(f"{where}: the answer is larger than 1 MiB")
                return bytes(body)
        except httpx.TimeoutException:
            raise SourceError(
                f"{where}: no answer within {self.config.timeout_s:g}s (HTTP_TIMEOUT)"
            ) from None
        except httpx.HTTPError as exc:
            raise SourceError(redact(f"{where}: {type(exc).__name__}: {exc}")) from None

    def sample(self, now: float) -> Reading:
        """Poll once; ``now`` is unused (the endpoint measures the age itself)."""
        body = self._get()
        try:
            return reading_from_body(body, self.config.name, self.config.unit)
        except SourceError as exc:
            raise SourceError(redact(f"{self.config.origin}: {exc}")) from None

    def check(self) -> str:
        reading = self.sample(0.0)
        if self.config.unit == "size":
            return f"{self.config.origin} answers {self.config.name}: {reading.depth} job(s)"
        return f"{self.config.origin} answers {self.config.name}: {reading.value_ms:.0f} ms"

    def close(self) -> None:
        self.client.close()


def build(
    config: DaemonConfig, process: ProcessConfig, own: HttpSettings | None = None
) -> HttpSource:
    return HttpSource(parse_config(config.env, process, own))


ADAPTER = SourceAdapter(HttpSettings, build, Metric.JOB_LATENCY)
