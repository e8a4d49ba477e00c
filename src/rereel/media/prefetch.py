"""Run a generator in a thread of its own, a few items ahead of whoever reads it.

PyAV's decoders and scalers, OpenCV and the networks release the GIL, so on two cores a decode
thread overlaps the work done with its frames (detection and embedding when indexing, encoding
when rendering) instead of alternating with it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


def prefetch(items: Iterator, size: int = 48) -> Iterator:
    """Yield what `items` yields, produced in a thread at most `size` items ahead. An error
    there is raised here; closing this generator (or dropping it) stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=work, daemon=True, name="rereel-prefetch")
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        drain(q, t)


def drain(q: queue.Queue, thread: threading.Thread) -> None:
    """Empty `q` until `thread` ends: a producer blocked on a full queue, told to stop, can then
    see that it should."""
    while thread.is_alive():
        try:
            q.get_nowait()
        except queue.Empty:
            thread.join(0.05)
