"""Soak test of `mien serve` under hostile input: the batch bomb of issue 17, then rounds of
32 clients sending a fixed count of mixed good and hostile requests. Reports requests/s,
p50/p99, the 5xx count (must be 0), answers other than the one expected, and the server's RSS
at start, peak and end of each round.

    python benchmarks/serve_soak.py [--requests 2000] [--rounds 2] [--clients 32]
                                    [--workers 2] [--attributes LIST] [--out PATH]

Phase 1, the batch bomb: POST /v1/analyze/batch with 16 flat 7000x7000 PNGs (~160 kB each,
49 MP each decoded; issue 17's case), then with 4 of them (the most pixels one request may
hold by default), each once alone and then two at once; peak RSS of each (sampled every 10 ms
and the kernel's high-water mark, reset before each where /proc allows).
Phase 2, the soak: in each round `--clients` loops draw request kinds from KINDS by weight
(seeded) until `--requests` answers have come back; RSS is read 3 s after each round, so a
second round shows whether memory keeps growing or has settled. Each kind names the statuses
it may get; a status outside them counts as unexpected. Good requests: a 640x480 one-face
photo (GENKI file0001, as benchmarks/serve_load.py makes it), raw, annotated or as a batch of
4. Hostile: random bytes as JPEG, a truncated JPEG, a PNG header announcing 60,000 x 60,000
pixels, a body over --max-upload-mb, 17 files in a batch, a 2000x2000 flat PNG, 1100x1100
noise at the lowest threshold and 100,000 faces allowed, bad options, an empty body, forms
without a file, unknown paths and methods. The client shares the machine's cores with the
server. Prints tables; writes JSON (default benchmarks/results/serve_soak.json) and exits 1 on
any 5xx or unexpected status in the soak.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import write_results
from serve_load import make_photo, rss_mib, start_server

ROOT = Path(__file__).resolve().parents[1]
BOMB_SIDE = 7000
BOMB_FILES = (16, 4)  # issue 17's case; the most a request may hold (4 x --max-pixels)


def png(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def flat_png(side: int) -> bytes:
    import numpy as np

    return png(np.full((side, side, 3), 128, np.uint8))


def bomb_header_png(side: int) -> bytes:
    """A valid PNG header announcing side x side pixels, with one compressed row."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * (side + 1), 9)) + chunk(b"IEND", b""))


@dataclass
class Kind:
    """One kind of request: how often it is drawn, how to send it, what it may get back."""

    name: str
    weight: float
    request: dict  # httpx.AsyncClient.request keyword arguments
    expect: frozenset[int]
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


def make_kinds(photo: bytes, max_upload_mb: float) -> list[Kind]:
    import numpy as np

    rng = np.random.default_rng(0)
    jpeg = {"Content-Type": "image/jpeg"}
    noise = png(rng.integers(0, 256, (1100, 1100, 3), np.uint8))  # 3.6 MB: under the limit
    over = int(max_upload_mb * (1 << 20)) + 1024

    def batch(files, query=""):
        return {"method": "POST", "url": "/v1/analyze/batch" + query,
                "files": [("files", (f"{i}.img", data, "image/png")) for i, data in
                          enumerate(files)]}

    def post(content, headers=jpeg, query=""):
        return {"method": "POST", "url": "/v1/analyze" + query, "content": content,
                "headers": headers}

    good = frozenset({200})
    return [
        Kind("photo", 40, post(photo), good),
        Kind("photo, annotated", 5, post(photo, query="?annotate=1"), good),
        Kind("batch of 4 photos", 8, batch([photo] * 4), good),
        Kind("random bytes", 5, post(rng.bytes(20_000)), frozenset({415})),
        Kind("truncated JPEG", 5, post(photo[: len(photo) // 2]), frozenset({422})),
        Kind("60k x 60k PNG header", 5, post(bomb_header_png(60_000), {"Content-Type":
                                                                       "image/png"}),
             frozenset({413})),
        Kind("body over the limit", 3, post(b"\xff\xd8\xff" + bytes(over)), frozenset({413})),
        Kind("17 files in a batch", 3, batch([photo] * 17), frozenset({413})),
        # YuNet's fine view takes seconds on these two (2000x2000: 36 MP seen in tiles)
        Kind("2000x2000 flat PNG", 1, post(flat_png(2000), {"Content-Type": "image/png"}),
             good),
        Kind("noise, lowest threshold", 1, post(noise, {"Content-Type": "image/png"},
                                                "?threshold=0.05&max_faces=100000"), good),
        Kind("threshold 0", 4, post(photo, query="?threshold=0"), frozenset({422})),
        Kind("unknown attribute", 3, post(photo, query="?attributes=age"), frozenset({422})),
        Kind("empty body", 3, post(b""), frozenset({422})),
        Kind("form without a file", 3, {"method": "POST", "url": "/v1/analyze",
                                        "files": {"note": (None, b"1")}}, frozenset({422})),
        Kind("form, not multipart", 2, {"method": "POST", "url": "/v1/analyze",
                                        "data": {"x": "1"}}, frozenset({415})),
        Kind("unknown path", 3, {"method": "GET", "url": "/v1/nothing"}, frozenset({404})),
        Kind("wrong method", 3, {"method": "DELETE", "url": "/v1/analyze"}, frozenset({405})),
        Kind("models", 3, {"method": "GET", "url": "/v1/models"}, good),
    ]


class RssSampler:
    """The server's RSS every 10 ms in a thread; `peak` since the last `reset`."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop.wait(0.01)

    def reset(self) -> None:
        """Peak from now; the kernel's high-water mark too, where allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            pass
        self.peak = rss_mib(self.pid)

    def high_water_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def batch_bomb(url: str, sampler: RssSampler) -> list[dict]:
    """Flat 7000x7000 PNGs in one batch, alone and then two such requests at once."""
    import httpx

    bomb = flat_png(BOMB_SIDE)
    rows = []
    for count, at_once in ((n, k) for n in BOMB_FILES for k in (1, 2)):
        files = [("files", (f"{i}.png", bomb, "image/png")) for i in range(count)]
        sampler.reset()
        start_rss = rss_mib(sampler.pid)
        answers: list[tuple[int, float]] = []

        def send(answers=answers, files=files):
            began = time.perf_counter()
            r = httpx.post(url + "/v1/analyze/batch", files=files, timeout=300)
            answers.append((r.status_code, time.perf_counter() - began))

        threads = [threading.Thread(target=send) for _ in range(at_once)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1)
        rows.append({
            "files": count, "requests_at_once": at_once, "png_bytes": len(bomb),
            "statuses": sorted(s for s, _ in answers),
            "seconds": [round(s, 1) for _, s in answers],
            "rss_start_mib": round(start_rss, 1),
            "rss_peak_mib": round(max(sampler.peak, sampler.high_water_mib()), 1),
            "rss_1s_after_mib": round(rss_mib(sampler.pid), 1)})
        print(f"  batch bomb {count} files x{at_once}: {rows[-1]}", file=sys.stderr)
    return rows


async def soak(url: str, kinds: list[Kind], clients: int, requests: int, seed: int
               ) -> tuple[float, list[float], int]:
    """Seconds, every latency, and the 5xx count of one round."""
    import httpx

    draw = random.Random(seed)
    order = draw.choices(kinds, weights=[k.weight for k in kinds], k=requests)
    queue = iter(order)
    latencies: list[float] = []
    server_errors = 0

    async def client(http: httpx.AsyncClient):
        nonlocal server_errors
        for kind in queue:
            began = time.perf_counter()
            try:
                r = await http.request(**kind.request)
                key = str(r.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            kind.latencies.append(time.perf_counter() - began)
            latencies.append(kind.latencies[-1])
            kind.statuses[key] = kind.statuses.get(key, 0) + 1
            server_errors += key.startswith("5")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - began, latencies, server_errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="soak rounds; RSS after each shows whether it keeps growing")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=32)
    parser.add_argument("--max-upload-mb", type=float, default=4.0)
    parser.add_argument("--attributes", default=None,
                        help="as `mien serve --attributes` [default: every bundled model]")
    parser.add_argument("--detector", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bomb", action="store_true", help="skip the batch-bomb phase")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_soak.json")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))

    photo = make_photo(data)
    kinds = make_kinds(photo, args.max_upload_mb)
    load_start = os.getloadavg()
    process, url = start_server(args, ("--max-upload-mb", str(args.max_upload_mb)))
    try:
        sampler = RssSampler(process.pid)
        rss_start = rss_mib(process.pid)
        bomb = [] if args.no_bomb else batch_bomb(url, sampler)
        rounds = []
        for i in range(args.rounds):
            sampler.reset()
            began_rss = rss_mib(process.pid)
            seconds, latencies, server_errors = asyncio.run(
                soak(url, kinds, args.clients, args.requests, args.seed + i))
            peak = max(sampler.peak, sampler.high_water_mib())
            time.sleep(3)
            ms = [1000 * v for v in latencies]
            rounds.append({
                "round": i + 1, "requests": len(ms), "seconds": round(seconds, 1),
                "requests_per_s": round(len(ms) / seconds, 1),
                "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(percentile(ms, 0.99), 1),
                "server_errors_5xx": server_errors,
                "rss_mib": {"start": round(began_rss, 1), "peak": round(peak, 1),
                            "end_after_3s_idle": round(rss_mib(process.pid), 1)}})
            print(f"  round {i + 1}: {rounds[-1]}", file=sys.stderr)
        sampler.stop()
    finally:
        process.terminate()
        process.wait(10)

    server_errors = sum(n for k in kinds for s, n in k.statuses.items() if s.startswith("5"))
    unexpected = sum(n for k in kinds for s, n in k.statuses.items()
                     if not s.isdigit() or int(s) not in k.expect)
    print(f"\n{'request':<26} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    rows = []
    for k in kinds:
        ms = [1000 * v for v in k.latencies]
        row = {"kind": k.name, "requests": len(ms), "expected": sorted(k.expect),
               "statuses": k.statuses,
               "p50_ms": round(statistics.median(ms), 1) if ms else None,
               "p99_ms": round(percentile(ms, 0.99), 1) if ms else None}
        rows.append(row)
        print(f"{k.name:<26} {len(ms):>5} {row['p50_ms'] or 0:>8.1f} {row['p99_ms'] or 0:>8.1f}  "
              + ", ".join(f"{s}: {n}" for s, n in sorted(k.statuses.items())))
    print(f"\n{'round':>5} {'requests':>8} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'5xx':>4} "
          f"{'RSS start':>9} {'peak':>6} {'end':>6}  (MiB; end: after 3 s idle)")
    for r in rounds:
        rss = r["rss_mib"]
        print(f"{r['round']:>5} {r['requests']:>8} {r['requests_per_s']:>6} {r['p50_ms']:>7} "
              f"{r['p99_ms']:>7} {r['server_errors_5xx']:>4} {rss['start']:>9} {rss['peak']:>6} "
              f"{rss['end_after_3s_idle']:>6}")
    print(f"{args.clients} clients; server RSS at its start {rss_start:.1f} MiB; "
          f"5xx: {server_errors}; unexpected statuses: {unexpected}")
    for row in bomb:
        print(f"batch bomb ({row['files']} x {BOMB_SIDE}x{BOMB_SIDE} PNG) "
              f"x{row['requests_at_once']} at once: statuses {row['statuses']}, "
              f"{row['seconds']} s, peak RSS "
              f"{row['rss_peak_mib']} MiB, {row['rss_1s_after_mib']} MiB 1 s after")
    command = "python benchmarks/serve_soak.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
    write_results(
        args.out, "serve_soak", command.strip(),
        load_average={"start": load_start, "end": os.getloadavg()},
        note="client and server share the machine's cores",
        server={"workers": args.workers, "queue": args.queue,
                "max_upload_mb": args.max_upload_mb, "attributes_option": args.attributes,
                "detector_option": args.detector},
        clients=args.clients, seed=args.seed, rss_start_mib=round(rss_start, 1),
        batch_bomb=bomb, rounds=rounds, server_errors_5xx=server_errors,
        unexpected_statuses=unexpected, kinds=rows)
    if server_errors or unexpected:
        sys.exit(1)


if __name__ == "__main__":
    main()
