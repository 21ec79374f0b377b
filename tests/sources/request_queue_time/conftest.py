"""The web tests' Redis database and their stop of the publishers' flush threads: this source
reads what the web middleware writes."""

from tests.web.conftest import _stop_flushers, redis_db

__all__ = ["_stop_flushers", "redis_db"]
