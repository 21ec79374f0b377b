"""The HTTP plumbing every platform adapter shares.

One ``Http`` per adapter wraps an ``httpx.Client`` and turns transport trouble into the typed
errors of ``autoscaler.ports``:

- every call has a timeout; every error message passes through ``redact``;
- 5xx answers and failed connections are retried a couple of times with jittered exponential
  backoff, inside the call's deadline;
- a timeout or dropped connection *after a write was sent* is ``WriteUnknown`` and is not retried
  (the loop re-reads the formation first);
- 429 is ``RateLimited``: the answer's ``Retry-After`` (or a growing default) blocks further calls
  of that budget without touching the network until it has passed;
- ``CallBudget`` caps our own call rate (a sliding window), so that a short interval can never
  spend a platform's shared allowance; reads leave a reserve for writes.

Adapters read platform-specific headers (``RateLimit-Remaining``...) through ``on_response``.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import random
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from autoscaler.clock import Clock, SystemClock
from autoscaler.ports import PlatformError, RateLimited, WriteUnknown
from autoscaler.redact import redact

#: the outcome of a write is unknown when the transport failed after the request left
_AFTER_SEND = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
               httpx.RemoteProtocolError)  # fmt: skip
#: nothing reached the server
_BEFORE_SEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_UNKNOWN = "the change may or may not have applied"


class CallBudget:
    """At most ``limit`` calls in any ``window`` seconds (sliding window), plus server blocks.

    ``reserve`` calls of every window are kept for writes: a read may spend only while more than
    ``reserve`` remain. ``block(seconds)`` stops every call until then (a 429, or a server that
    says its allowance is spent).
    """

    def __init__(
        self, name: str, limit: int, window: float, *, reserve: int = 0, clock: Clock | None = None
    ) -> None:
        if limit <= reserve:
            raise ValueError("a budget's limit must exceed its write reserve")
        self.name = name
        self.limit = limit
        self.window = window
        self.reserve = reserve
        self.clock = clock or SystemClock()
        self.spent = 0  # calls spent since creation
        self._stamps: deque[float] = deque()
        self._blocked_until = 0.0

    def _now(self) -> float:
        return self.clock.now().mono

    def _prune(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()

    def wait(self, *, write: bool = False) -> float:
        """Seconds until a call may be spent (0.0: now)."""
        now = self._now()
        self._prune(now)
        blocked = max(0.0, self._blocked_until - now)
        allowed = self.limit if write else self.limit - self.reserve
        if len(self._stamps) < allowed:
            return blocked
        oldest_that_must_expire = self._stamps[len(self._stamps) - allowed]
        return max(blocked, oldest_that_must_expire + self.window - now)

    def spend(self, *, write: bool = False) -> None:
        """Record one call, or raise ``RateLimited`` (without any network call) if none is left."""
        wait = self.wait(write=write)
        if wait > 0:
            raise RateLimited(
                f"{self.name}: holding back to stay within the API rate limit "
                f"(next call in {wait:.0f}s)",
                retry_after=wait,
            )
        self._stamps.append(self._now())
        self.spent += 1

    def block(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._now() + max(0.0, seconds))

    def used(self) -> int:
        """Calls spent in the current window."""
        self._prune(self._now())
        return len(self._stamps)


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
                return redact(body[key][:limit])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return redact(str(errors[0].get("message", ""))[:limit])
    text = response.text.strip().replace("\n", " ")
    return redact(text[:limit]) if text else response.reason_phrase


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
        budget: CallBudget | None = None,
    ) -> httpx.Response:
        budget = budget or self.budget
        what = f"{self.platform}: {method} {path}"
        deadline = self.clock.now().mono + self.timeout * (self.retries + 1)
        maybe_applied = False  # a write reached the server and its outcome is not known
        attempt = 0
        while True:
            budget.spend(write=write)
            try:
                response = self._client.request(method, path, json=json)
            except _BEFORE_SEND as exc:
                problem = f"cannot connect ({exc})"
            except _AFTER_SEND as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "was cut off"
                problem = f"{kind} after the request was sent ({exc!r})"
                if write:  # never re-sent: the loop re-reads the formation first
                    raise WriteUnknown(redact(f"{what}: {problem}; {_UNKNOWN}")) from None
            except httpx.HTTPError as exc:
                raise PlatformError(redact(f"{what}: {exc!r}")) from None
            else:
                if self.on_response is not None:
                    self.on_response(response)
                if response.status_code == 429:
                    raise self._rate_limited(what, response, budget)
                self._rate_limited_streak = 0
                if response.status_code < 500:
                    return response
                problem = f"{response.status_code} {error_message(response)}"
                maybe_applied = maybe_applied or write
            pause = self.backoff * (2**attempt) * self.rng.uniform(0.5, 1.0)
            if attempt >= self.retries or self.clock.now().mono + pause > deadline:
                if maybe_applied:
                    raise WriteUnknown(redact(f"{what}: {problem}; {_UNKNOWN}"))
                raise PlatformError(redact(f"{what}: {problem}"))
            attempt += 1
            self.clock.sleep(pause)

    def _rate_limited(self, what: str, response: httpx.Response, budget: CallBudget) -> RateLimited:
        self._rate_limited_streak += 1
        wait = retry_after(response)
        if wait is None:  # the platform did not say: 5s, 10s, 20s... up to 5 minutes
            wait = min(300.0, 5.0 * 2 ** (self._rate_limited_streak - 1))
        budget.block(wait)
        return RateLimited(
            redact(f"{what}: rate limited by the platform ({error_message(response)}); "
                   f"retrying in {wait:.0f}s"),
            retry_after=wait,
        )  # fmt: skip

    def close(self) -> None:
        self._client.close()
