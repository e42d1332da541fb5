"""When the interpreter's full garbage collections run while the app is up.

A full collection stops every thread until it has walked every tracked object.
With the incident screen up that is 100k+ objects, and collections came every
second or so: 60-200 ms stalls, the whole tail of keypress latency. So, once
the first screen is drawn, the objects of imports and widgets are frozen (never
walked again), automatic full collections are turned off, and the app runs one
itself when the operator pauses typing, or at least once a minute. Young
collections, which free the garbage of every frame, run as before.
"""

from __future__ import annotations

import gc
import time

PAUSE_SECONDS = 2.0  # no key for this long: a stall here is not felt
AT_LEAST_EVERY = 60.0  # however busy the keyboard, memory is reclaimed this often
NEVER = 1_000_000  # full collections after this many middle ones: never, in practice


class GarbagePacer:
    def __init__(self) -> None:
        self.started = False
        self.last_key = time.monotonic()
        self.last_full = time.monotonic()
        self._threshold = gc.get_threshold()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        gc.collect()
        gc.freeze()
        self._threshold = gc.get_threshold()
        young, middle, _ = self._threshold
        gc.set_threshold(young, middle, NEVER)

    def key_pressed(self) -> None:
        self.last_key = time.monotonic()

    def tick(self) -> None:
        """Called every few seconds: collect if the operator has paused, or if it is due."""
        if not self.started:
            return
        now = time.monotonic()
        if now - self.last_key >= PAUSE_SECONDS or now - self.last_full >= AT_LEAST_EVERY:
            gc.collect()
            self.last_full = now

    def stop(self) -> None:
        """Hand collection back to the interpreter (the app is closing)."""
        if self.started:
            gc.set_threshold(*self._threshold)
            gc.unfreeze()
            self.started = False
