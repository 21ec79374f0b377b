"""The HTTP plumbing every platform adapter shares.

One ``Http`` per adapter wraps an ``httpx.Client`` and turns transport trouble into the typed
errors of ``autoscaler.ports``:

- every call has a timeout; every error message passes through ``redact``;
- 5xx answers and failed connections are retried a couple of times with jittered exponential
  backoff (``tenacity`` runs the attempts; absolute writes are idempotent, so a write that got a
  5xx may be re-sent, and what the outcome of a failed write means stays here);
- a timeout or dropped connection *after a write was sent* is ``WriteUnknown`` and is not retried
  (the loop re-reads the formation first);
- 429 is ``RateLimited``: the answer's ``Retry-After`` (or a growing default) blocks further calls
  of that budget without touching the network until it has passed;
- ``CallBudget`` caps our own call rate (a token bucket), so that a short interval can never
  spend a platform's shared allowance; reads leave a reserve for writes.

Adapters read platform-specific headers (``RateLimit-Remaining``...) through ``on_response``.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import tenacity

from autoscaler.clock import Clock, SystemClock
from autoscaler.ports import PlatformError, RateLimited, WriteUnknown
from autoscaler.redact import printable, redact

#: the outcome of a write is unknown when the transport failed after the request left
_AFTER_SEND = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
#: nothing reached the server
_BEFORE_SEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_UNKNOWN = "the change may or may not have applied"


class _Again(Exception):
    """An attempt that failed in a way worth another one (a 5xx, a failed connection)."""


class _OutOfBudget(tenacity.stop.stop_base):
    """No retry once the call budget would make it wait: the next tick tries again."""

    def __init__(self, budget: CallBudget, priority: bool) -> None:
        self.budget = budget
        self.priority = priority

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.budget.wait(priority=self.priority) > 0


class CallBudget:
    """Our own pace: a token bucket refilled at ``limit`` calls per ``window`` seconds.

    It holds at most ``burst`` tokens, so any span of ``t`` seconds sees at most
    ``burst + limit * t / window`` calls, whatever the loop's interval. ``reserve`` tokens are
    kept for writes (and the re-read just before one): other calls spend only above it.
    ``block(seconds)`` stops every call until then (a 429, or a server that says its allowance
    is spent).
    """

    def __init__(
        self,
        name: str,
        limit: float,
        window: float,
        *,
        burst: int,
        reserve: int = 0,
        clock: Clock | None = None,
    ) -> None:
        if burst <= reserve:
            raise ValueError("a budget's burst must exceed its write reserve")
        self.name = name
        self.rate = limit / window  # tokens per second
        self.burst = burst
        self.reserve = reserve
        self.clock = clock or SystemClock()
        self.spent = 0  # calls spent since creation
        self._tokens = float(burst)
        self._at = self._now()
        self._blocked_until = 0.0

    def _now(self) -> float:
        return self.clock.now().mono

    def _refill(self) -> float:
        now = self._now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        return now

    def wait(self, *, priority: bool = False) -> float:
        """Seconds until a call may be spent (0.0: now). ``priority``: may use the reserve."""
        now = self._refill()
        need = 1.0 if priority else 1.0 + self.reserve
        short = max(0.0, need - self._tokens) / self.rate
        return max(short, self._blocked_until - now, 0.0)

    def spend(self, *, priority: bool = False) -> None:
        """Take one token, or raise ``RateLimited`` (without any network call) if none is left."""
        wait = self.wait(priority=priority)
        if wait > 0:
            raise RateLimited(
                f"{self.name}: holding back to stay within the API rate limit "
                f"(next call in {wait:.1f}s)",
                retry_after=wait,
            )
        self._tokens -= 1.0
        self.spent += 1

    def block(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._now() + max(0.0, seconds))


#: the longest any rate-limit header may hold calls back (a misread value must not stop scaling)
MAX_HOLD = 3600.0
#: a reset value above this is a UNIX time (2001-09-09), below it a delay in seconds
_EPOCH_FLOOR = 1e9


def reset_delay(value: str, wall_now: float) -> float | None:
    """A rate-limit reset header as seconds from now, between 0 and ``MAX_HOLD``.

    Providers disagree on the form: Render's docs say "UTC epoch seconds" while its OpenAPI and
    recorded answers show a delay (``45``); Railway's docs do not say. A value above 1e9 is an
    epoch, anything smaller a delay. ``None`` for a value that is not a finite number.
    """
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    wait = number - wall_now if number > _EPOCH_FLOOR else number
    return min(max(wait, 0.0), MAX_HOLD)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or ``None``."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("date")
    now = email.utils.parsedate_to_datetime(date) if date else None
    if now is None:
        now = datetime.datetime.now(tz=datetime.UTC)
    return max(0.0, (when - now).total_seconds())


def error_message(response: httpx.Response, limit: int = 300) -> str:
    """The human part of an error answer: ``message``/``error``/GraphQL ``errors``, else text."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return redact(printable(body[key][:limit]))
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return redact(printable(str(errors[0].get("message", ""))[:limit]))
    text = response.text.strip().replace("\n", " ")
    return redact(printable(text[:limit])) if text else response.reason_phrase


def bearer_headers(token: str, accept: str = "application/json") -> dict[str, str]:
    """The headers of a platform API read with a bearer token."""
    return {"Accept": accept, "Authorization": f"Bearer {token}", "User-Agent": "queue-autoscaler"}


class Http:
    """An ``httpx.Client`` for one platform API with timeouts, budgets, retries and typed errors.

    ``request`` returns the response for any status below 500 except 429 (the adapter interprets
    4xx answers); it raises ``RateLimited``, ``WriteUnknown`` or ``PlatformError`` otherwise.
    """

    def __init__(
        self,
        platform: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        budget: CallBudget,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        clock: Clock | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.platform = platform
        self.budget = budget
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.clock = clock or SystemClock()
        self.on_response = on_response
        self.rng = rng or random.Random()
        self._rate_limited_streak = 0
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        write: bool = False,
        priority: bool | None = None,
        budget: CallBudget | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call (retried on 5xx and failed connections).

        ``write``: a timeout after sending is ``WriteUnknown``, never re-sent. ``priority``
        (default: ``write``) may spend the budget's write reserve, e.g. the re-read before a write.
        ``headers`` are added to this call's (e.g. Fly's lease nonce).
        """
        budget = budget or self.budget
        priority = write if priority is None else priority
        what = f"{self.platform}: {method} {path}"
        maybe_applied = False  # a write reached the server and its outcome is not known

        def attempt() -> httpx.Response:
            nonlocal maybe_applied
            budget.spend(priority=priority)
            try:
                response = self._client.request(method, path, json=json, headers=headers)
            except _BEFORE_SEND as exc:
                raise _Again(f"cannot connect ({exc})") from None
            except _AFTER_SEND as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "was cut off"
                problem = f"{kind} after the request was sent ({exc!r})"
                if write:  # never re-sent: the loop re-reads the formation first
                    raise WriteUnknown(redact(f"{what}: {problem}; {_UNKNOWN}")) from None
                raise _Again(problem) from None
            except httpx.HTTPError as exc:
                raise PlatformError(redact(f"{what}: {exc!r}")) from None
            if self.on_response is not None:
                self.on_response(response)
            if response.status_code == 429:
                limited = self._rate_limited(what, response, budget)
                if maybe_applied:  # an earlier attempt of this write got a 5xx
                    raise WriteUnknown(f"{limited}; an earlier attempt: {_UNKNOWN}")
                raise limited
            self._rate_limited_streak = 0
            if response.status_code < 500:
                return response
            maybe_applied = maybe_applied or write
            raise _Again(f"{response.status_code} {error_message(response)}")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Again),
            stop=tenacity.stop_after_attempt(self.retries + 1) | _OutOfBudget(budget, priority),
            wait=tenacity.wait_exponential(multiplier=self.backoff),
            # the jitter is drawn as the retry sleeps, from the adapter's own (seedable) rng
            sleep=lambda seconds: self.clock.sleep(seconds * self.rng.uniform(0.5, 1.0)),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Again as exc:
            if maybe_applied:
                raise WriteUnknown(redact(f"{what}: {exc}; {_UNKNOWN}")) from None
            raise PlatformError(redact(f"{what}: {exc}")) from None

    def _rate_limited(self, what: str, response: httpx.Response, budget: CallBudget) -> RateLimited:
        self._rate_limited_streak += 1
        wait = retry_after(response)
        if wait is None:  # the platform did not say: 5s, 10s, 20s... up to 5 minutes
            wait = min(300.0, 5.0 * 2 ** (self._rate_limited_streak - 1))
        budget.block(wait)
        return RateLimited(
            redact(
                f"{what}: rate limited by the platform ({error_message(response)}); "
                f"retrying in {wait:.0f}s"
            ),
            retry_after=wait,
        )

    def close(self) -> None:
        self._client.close()


def iso_seconds(value: Any) -> float | None:
    """An ISO-8601 time (``...Z`` or with an offset) as epoch seconds; ``None`` if absent or
    unreadable (the platforms' ``updated_at``, ``createdAt``, ...)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
