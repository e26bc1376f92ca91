"""The node heartbeat of `serve` (SPEC §9): a `nodes` row written when it starts and beaten every
few seconds on a thread of its own, so the other nodes can tell when this one is dead and take over
what it had claimed. The beat never touches intake: a database outage only delays it, and a node
whose beat stops while it is alive loses only claims it would have finished anyway (finishing
checks the claim is still held; gateway/store/inbox.py). While its own beat is stale, its sender
and processors claim nothing (gateway/store/nodes.py `require_live`), so it never works side by
side with a node that took over from it; the next beat lets them claim again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import Engine

from gateway.errors import TransientError
from gateway.store import nodes

log = logging.getLogger(__name__)


class Heartbeat:
    """Registers this node, then beats until `stop()`, which marks it stopped."""

    def __init__(self, engine: Engine, *, name: str | None, interval: float = nodes.BEAT_SECONDS) -> None:
        self._engine = engine
        self.host = socket.gethostname()
        self.name = name or self.host
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_logged = False
        self.node_id = 0

    def register(self) -> int:
        """This run's `nodes` row (raises TransientError while the database is unreachable)."""
        self.node_id = nodes.register(self._engine, name=self.name, host=self.host, pid=os.getpid())
        log.info("node %s (id %d, pid %d) registered", self.name, self.node_id, os.getpid())
        return self.node_id

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            nodes.stopped(self._engine, self.node_id)
        except TransientError as exc:  # the beat just stops; the others see it as dead soon enough
            log.warning("could not mark node %s stopped: %s", self.name, exc)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                nodes.beat(self._engine, self.node_id)
            except TransientError as exc:
                if not self._outage_logged:
                    log.error("heartbeat: database unavailable, will retry: %s", exc)
                    self._outage_logged = True
                continue
            except Exception:  # a bug must not stop the daemon; the next beat tries again
                log.exception("heartbeat failed")
                continue
            if self._outage_logged:
                log.info("heartbeat: database reachable again")
                self._outage_logged = False
