"""A tiny single-threaded event loop: epoll callbacks, timers, futures and coroutines.

Request handlers are ``async def`` functions that ``await`` Futures; ``Task`` drives
them by hand (no asyncio import: the shim stays small).  Everything runs on one
thread, so shim state needs no locks; slow work (runc) is a child process whose
exit completes a Future.
"""

from __future__ import annotations

import heapq
import itertools
import select
import time
from collections import deque
from typing import Any, Callable

EPOLLIN, EPOLLOUT, EPOLLPRI = select.EPOLLIN, select.EPOLLOUT, select.EPOLLPRI
EPOLLHUP, EPOLLERR = select.EPOLLHUP, select.EPOLLERR


class Future:
    """A value that arrives later; ``await fut`` suspends the awaiting Task."""

    __slots__ = ("_loop", "_done", "_result", "_exc", "_callbacks")

    def __init__(self, loop: "Loop") -> None:
        self._loop = loop
        self._done = False
        self._result: Any = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[["Future"], None]] = []

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._result

    def set_result(self, value: Any) -> None:
        self._finish(value, None)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(None, exc)

    def _finish(self, value: Any, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done, self._result, self._exc = True, value, exc
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            self._loop.call_soon(cb, self)

    def add_done_callback(self, cb: Callable[["Future"], None]) -> None:
        if self._done:
            self._loop.call_soon(cb, self)
        else:
            self._callbacks.append(cb)

    def __await__(self):
        if not self._done:
            yield self
        return self.result()


class Task:
    """Runs one coroutine to completion, then calls ``on_done(result, exc)``."""

    __slots__ = ("_coro", "_on_done", "_finished")

    def __init__(self, loop: "Loop", coro, on_done: Callable[[Any, BaseException | None], None]) -> None:
        self._coro = coro
        self._on_done = on_done
        self._finished = False
        loop.call_soon(self._step, None, None)

    def _step(self, value: Any, exc: BaseException | None) -> None:
        if self._finished:
            return
        try:
            fut = self._coro.throw(exc) if exc is not None else self._coro.send(value)
        except StopIteration as stop:
            self._finished = True
            self._on_done(stop.value, None)
            return
        except Exception as e:
            self._finished = True
            self._on_done(None, e)
            return
        fut.add_done_callback(self._wake)

    def _wake(self, fut: Future) -> None:
        if fut._exc is not None:
            self._step(None, fut._exc)
        else:
            self._step(fut._result, None)

    def cancel(self) -> None:
        """Abandon the coroutine (its caller went away); no result is reported."""
        if not self._finished:
            self._finished = True
            self._coro.close()


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._masks: dict[int, int] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._ready: deque = deque()
        self._stopping = False

    def create_future(self) -> Future:
        return Future(self)

    def spawn(self, coro, on_done: Callable[[Any, BaseException | None], None]) -> Task:
        return Task(self, coro, on_done)

    # -- readiness ----------------------------------------------------------------

    def watch(self, fd: int, mask: int, handler: Callable[[int], None]) -> None:
        """Call ``handler(events)`` whenever ``fd`` is ready for ``mask``; re-watching updates it."""
        if fd in self._handlers:
            if self._masks[fd] != mask:
                self._epoll.modify(fd, mask)
        else:
            self._epoll.register(fd, mask)
        self._handlers[fd] = handler
        self._masks[fd] = mask

    def unwatch(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None:
            del self._masks[fd]
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    # -- time ---------------------------------------------------------------------

    def call_soon(self, cb: Callable, *args: Any) -> None:
        self._ready.append((cb, args))

    def call_later(self, delay: float, cb: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, cb)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def sleep(self, delay: float) -> Future:
        fut = self.create_future()
        self.call_later(delay, lambda: fut.set_result(None))
        return fut

    # -- running ------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        while not self._stopping:
            self.run_once()

    def run_once(self) -> None:
        timeout = 0.0 if self._ready else self._next_timeout()
        for fd, events in self._epoll.poll(timeout):
            handler = self._handlers.get(fd)
            if handler is not None:
                _guarded(handler, events)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._ready.append((timer.callback, ()))
        for _ in range(len(self._ready)):
            cb, args = self._ready.popleft()
            _guarded(cb, *args)

    def _next_timeout(self) -> float:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            return -1
        return max(0.0, self._timers[0][0] - time.monotonic())


def _guarded(cb: Callable, *args: Any) -> None:
    """One failing callback is logged; it never takes the shim (and its containers' IO) down."""
    try:
        cb(*args)
    except Exception:
        import traceback

        traceback.print_exc()
