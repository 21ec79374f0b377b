"""What the policy learned, loaded once at start and saved every few minutes by the leader.

The daemon's side of ``autoscaler.policy.snapshot``: the values live in a ``StateStore`` beside
the lock (``adapters/locks/state_redis.py``, ``adapters/locks/state_postgres.py``). A store that
fails is logged and ignored: the policy then learns again, as it does without a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.policy import PolicyState
from autoscaler.policy.snapshot import restore, snapshot
from autoscaler.ports import StateStore, StoreError

#: how often the leader saves what was learned (monotonic seconds)
SAVE_EVERY = 300.0


class Learned:
    def __init__(self, store: StateStore | None, log: Any, every: float = SAVE_EVERY) -> None:
        self.store = store
        self.log = log
        self.every = every
        self._loaded: dict[str, object] | None = None
        self._saved_at: float | None = None

    def restore(self, process: str, state: PolicyState, mono: float) -> PolicyState:
        """``state`` (a process seen for the first time) with what was saved for it, if valid."""
        if self.store is None:
            return state
        if self._loaded is None:
            self._loaded = {}
            try:
                self._loaded = self.store.load()
            except StoreError as exc:
                self.log.warning("learned_state_unavailable", error=str(exc))
        saved = self._loaded.get(process)
        restored = restore(state, saved, mono)
        if saved is not None:
            self.log.info(
                "learned_state",
                process=process,
                restored=restored is not state,
                capacity=restored.capacity,
                sure=restored.sure,
                boot_s=restored.boot,
            )
        return restored

    def maybe_save(self, states: Mapping[str, PolicyState], mono: float, leader: bool) -> None:
        """Save every ``every`` seconds, as the leader only (one writer)."""
        if self.store is None or not leader or not states:
            return
        if self._saved_at is not None and mono - self._saved_at < self.every:
            return
        self._saved_at = mono
        try:
            self.store.save({p: snapshot(s, mono) for p, s in states.items()})
        except StoreError as exc:
            self.log.warning("learned_state_not_saved", error=str(exc))
