"""Collect the turns concurrent episodes ask for and hand them to a sampler in batches.

Rollouts run many episodes at once, and each asks its engine for one turn. A
:class:`TurnBatcher` holds the requests that arrive within a short window and runs
them together on a worker thread (``run(batch) -> one result per request``), so the
sampler sees one batch per decoding round. Both batched engines use it
(:class:`~reasonloop.training.batched.BatchedHFEngine`,
:class:`~reasonloop.training.vllm_engine.VLLMEngine`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from reasonloop.errors import ConfigError

__all__ = ["TurnBatcher"]

R = TypeVar("R")
T = TypeVar("T")


class TurnBatcher(Generic[R, T]):
    """Requests in, one batched ``run`` per window out; a failure reaches every waiter of its batch."""

    def __init__(self, run: Callable[[list[R]], Sequence[T]], *, max_batch: int, window_s: float) -> None:
        """Args:
        run: Samples a batch (called on a worker thread); one result per request, in order.
        max_batch: Most requests handed to one ``run``.
        window_s: How long the first request of a batch waits for others.
        """
        if max_batch < 1 or window_s < 0:
            raise ConfigError("max_batch must be >= 1 and window_s >= 0")
        self.max_batch, self.window_s = max_batch, window_s
        self._run = run
        self._pending: list[tuple[R, asyncio.Future[T]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, request: R) -> T:
        """Queue ``request`` and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((request, future))
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(self.window_s)  # let the other episodes of the round ask too
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                done = await asyncio.to_thread(self._run, [r for r, _ in batch])
            except Exception as exc:  # every waiting episode gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, done, strict=True):
                if not future.done():
                    future.set_result(result)
