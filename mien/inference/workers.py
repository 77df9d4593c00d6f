"""Still photos analysed by worker processes beside the caller, each running the whole pipeline
(decode, detect, crop, classify) on its share: threads of one process wait for each other's
GIL between their native calls, separate processes do not.

Workers are forked from the caller, so they start in milliseconds with the models already
loaded (no second load, nothing read again); where fork is unsafe or missing (macOS, Windows)
the pipeline keeps its threads. Photos go out in chunks of `CHUNK` and their rows come back in
the order the photos were given."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator

from mien.errors import MienError

CHUNK = 8  # photos per hand-off: the last round may leave a worker idle for one chunk
POLL_S = 1.0  # how often a waiting side checks that the other is still there


def can_fork() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def chunked(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    return iter(lambda: list(itertools.islice(iterator, size)), [])


class Workers:
    """`count` forked copies of `pipeline` that analyse chunks of photo paths. `images`: send
    each photo's pixels back with its rows (for drawing or cropping); without, frames come back
    with `image` None."""

    def __init__(self, pipeline, count: int, images: bool):
        context = multiprocessing.get_context("fork")
        self._pipeline = pipeline
        self._workers: list[tuple] = []
        # OpenCV's pool threads would not exist in a forked copy, whose first parallel call
        # would wait for them for ever: the pool is stopped before the fork (and each process
        # then has one core's work anyway), and restored by close().
        self._cv2_threads = _set_cv2_threads(1)
        ends = []
        try:
            for _ in range(count):
                here, there = context.Pipe()
                # A worker closes the caller's ends of the pipes forked before it, so each
                # worker sees the end of its own pipe when the caller goes.
                process = context.Process(
                    target=_serve, args=(pipeline, there, images, [h for h, _ in ends]),
                    daemon=True, name="mien-analysis-worker")
                process.start()
                there.close()
                ends.append((here, process))
        except BaseException:
            for here, process in ends:
                process.terminate()
                here.close()
            _set_cv2_threads(self._cv2_threads)
            raise
        for here, process in ends:  # threads only after every fork
            results: queue.Queue = queue.Queue()
            reader = threading.Thread(target=_read, args=(here, results), daemon=True)
            reader.start()
            self._workers.append((process, here, results, reader))

    def run(self, chunks: Iterable[list[str]],
            local: Callable[[list[str]], Iterable[tuple]]) -> Iterator[tuple]:
        """(frame, rows) for every photo of `chunks`, in order. Each round hands one chunk to
        every worker and the next to `local` (the caller's own share, run meanwhile); the
        workers get the following round before the caller starts on its chunk."""
        n = len(self._workers)
        rounds = chunked(chunks, n + 1)
        current = next(rounds, None)
        if current is not None:
            self._send(current)
        while current is not None:
            following = next(rounds, None)
            if following is not None:
                self._send(following)
            mine = list(local(current[n])) if len(current) > n else []
            for k in range(min(n, len(current))):
                yield from self._receive(k)
            yield from mine
            current = following

    def _send(self, chunks: list[list[str]]) -> None:
        for (_, here, _, _), chunk in zip(self._workers, chunks, strict=False):
            here.send(chunk)

    def _receive(self, k: int) -> Iterator[tuple]:
        """Worker `k`'s (frame, rows) for the oldest chunk it was sent, as they come."""
        process, _, results, _ = self._workers[k]
        while True:
            try:
                message = results.get(timeout=POLL_S)
            except queue.Empty:
                if process.is_alive() or not results.empty():
                    continue
                message = None
            if message is None:
                # Its pipe closes as it dies, which the reader can see before the process is
                # reaped: wait for that, so the exit code is known.
                process.join(timeout=5)
                raise MienError(f"an analysis worker process stopped (exit code "
                                f"{process.exitcode}); run again with --threads 1 to see why")
            status, payload = message
            if status == "frame":
                yield payload
            elif status == "done":
                self._pipeline.stats.add(payload)
                return
            else:
                raise MienError(f"an analysis worker process failed: {payload}")

    def close(self) -> None:
        for _, here, _, _ in self._workers:
            try:
                here.send(None)
            except OSError:
                pass
        for process, here, _, reader in self._workers:
            process.join(timeout=2)
            if process.is_alive():
                process.terminate()
                process.join()
            # The reader sees the worker's end close; only then may its descriptor go: closed
            # under a blocked read, the number would be reused by the next pipe and the old
            # reader would take that pipe's answers.
            reader.join()
            here.close()
        _set_cv2_threads(self._cv2_threads)


def _set_cv2_threads(count: int | None) -> int | None:
    """OpenCV's thread count set to `count`; the one before (None: OpenCV is not installed)."""
    try:
        import cv2
    except ImportError:
        return None
    before = cv2.getNumThreads()
    if count is not None:
        cv2.setNumThreads(count)
    return before


def _read(connection, results: queue.Queue) -> None:
    """Moves a worker's answers into `results` as they come, so a worker never waits for the
    caller to finish its own chunk before it can hand over a large answer."""
    while True:
        try:
            results.put(connection.recv())
        except (EOFError, OSError):
            results.put(None)
            return


def _serve(pipeline, connection, images: bool, inherited: list) -> None:
    """A worker's loop: a chunk of paths in; ("frame", (frame, rows)) out for each frame, one at
    a time (a chunk of 12 MP photos with their pixels would be hundreds of MB in one message),
    then ("done", its stats); None ends it."""
    for end in inherited:
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, which stops us
    parent = os.getppid()
    pipeline.threads = 1  # in turn on this process's one core
    while True:
        try:
            while not connection.poll(POLL_S):
                if os.getppid() != parent:  # the caller was killed: nobody will read us
                    return
            paths = connection.recv()
        except (EOFError, OSError):
            return
        if paths is None:
            return
        pipeline.stats = type(pipeline.stats)()
        try:
            for frame, rows in pipeline.run_frames(paths):
                kept = frame if images else dataclasses.replace(frame, image=None)
                connection.send(("frame", (kept, rows)))
            connection.send(("done", pipeline.stats))
        except Exception as exc:  # noqa: BLE001  (handed to the caller, raised there)
            connection.send(("failed", f"{type(exc).__name__}: {exc}"))
