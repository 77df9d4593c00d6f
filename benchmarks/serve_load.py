"""Load test of `mien serve` on loopback: requests/s and p50/p99 latency at 1, 8 and 32
concurrent clients posting a 640x480 one-face photo, errors counted, and the server's RSS
before and after all the requests.

    python benchmarks/serve_load.py [--requests 5000] [--clients 1,8,32] [--workers 2]
                                    [--attributes LIST] [--out PATH]

The photo is GENKI-SZSL file0001 (../shared/data or $MIEN_DATA) cropped to 4:3 around its face
and resized to 640x480. --requests is the total over the levels (10% / 30% / 60% for 1 / 8 / 32
clients). The clients share the machine's cores with the server.

"classifier_batching" times each loaded classifier per face at batch 1, 8 and 32 on real face
crops: pooling faces of concurrent requests into one classifier call can only pay off when a
face costs less in a bigger batch, and can save at most the classifiers' share of a request
("classifiers_share_of_request"). A micro-batcher that did this was tried and removed: it showed
no consistent gain and added its wait to every request.
Prints a table and writes JSON (default benchmarks/results/serve_load.json).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARES = {1: 0.1, 8: 0.3, 32: 0.6}  # of --requests; other client counts share the rest evenly


def make_photo(data: Path) -> bytes:
    """640x480 JPEG of a real one-face photo (GENKI file0001, 179x192, face near the centre)."""
    from PIL import Image

    from mien.data.io import read_image

    rgb = read_image(data / "detection/genki_szsl/files/file0001.jpg")
    h, w = rgb.shape[:2]
    crop_h = round(w * 3 / 4)
    top = (h - crop_h) // 2
    picture = Image.fromarray(rgb[top:top + crop_h]).resize((640, 480), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """`mien serve` with `args`' workers, queue, attributes and detector (and `extra`
    options), once it answers /readyz."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "mien.cli.main", "serve", "--port", str(port),
               "--workers", str(args.workers), "--queue", str(args.queue),
               "--log-level", "warning", *extra]
    if args.attributes is not None:
        command += ["--attributes", args.attributes]
    if args.detector:
        command += ["--detector", args.detector]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"mien serve exited: {process.stderr.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    sys.exit("mien serve did not become ready in 120 s")


async def load(url: str, photo: bytes, clients: int, requests: int) -> dict:
    """`clients` loops posting the photo until `requests` answers have come back."""
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = 0

    async def client(http: httpx.AsyncClient):
        nonlocal sent
        while sent < requests:
            sent += 1
            start = time.perf_counter()
            try:
                r = await http.post("/v1/analyze", content=photo,
                                    headers={"Content-Type": "image/jpeg"})
                key = str(r.status_code)
                if r.status_code == 200 and len(r.json()["faces"]) != 1:
                    key = "200-wrong-face-count"
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - start)
            statuses[key] = statuses.get(key, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    ms = sorted(1000 * v for v in latencies)
    return {
        "clients": clients, "requests": len(ms), "seconds": round(elapsed, 2),
        "requests_per_s": round(len(ms) / elapsed, 2),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
        "errors": sum(n for k, n in statuses.items() if k != "200"), "statuses": statuses,
    }


def run_server(args, photo: bytes, levels: list[tuple[int, int]]) -> dict:
    import httpx

    process, url = start_server(args)
    try:
        info = httpx.get(url + "/v1/models").json()
        faces = httpx.post(url + "/v1/analyze", content=photo,
                           headers={"Content-Type": "image/jpeg"}).json()["faces"]
        if len(faces) != 1:
            sys.exit(f"the benchmark photo should show one face, the server found {len(faces)}")
        asyncio.run(load(url, photo, 2, args.warmup))
        rss_before = rss_mib(process.pid)
        rows = []
        for clients, requests in levels:
            row = asyncio.run(load(url, photo, clients, requests))
            row["rss_after_mib"] = round(rss_mib(process.pid), 1)
            rows.append(row)
            print(f"  clients={clients}: {row['requests_per_s']} req/s", file=sys.stderr)
        return {
            "detector": info["detector"]["default"],
            "attributes": [a["name"] for a in info["attributes"]],
            "levels": rows,
            "rss_mib": {"before": round(rss_before, 1), "after": round(rss_mib(process.pid), 1),
                        "requests_between": sum(r["requests"] for r in rows)},
        }
    finally:
        process.terminate()
        process.wait(10)


def classifier_batching(args, photo: bytes, sizes=(1, 8, 32), rounds: int = 7) -> dict:
    """Median milliseconds per face of each classifier at each batch size, on the photo's
    face crop; the sizes take turns so a busy machine slows them alike."""
    from mien.data.io import decode_image
    from mien.detection import create_detector
    from mien.inference.align import crop_face
    from mien.inference.pipeline import load_attributes

    specs = None if args.attributes is None else [a for a in args.attributes.split(",") if a]
    classifiers = load_attributes(specs)
    image = decode_image(photo, "rgb")
    [face] = create_detector(args.detector).detect(image)
    crops = [crop_face(image, face)] * max(sizes)
    out = {}
    for name, classifier in classifiers.items():
        classifier.predict_proba(crops)  # warm up
        times: dict[int, list[float]] = {b: [] for b in sizes}
        for _ in range(rounds):
            for b in sizes:
                start = time.perf_counter()
                for i in range(0, len(crops), b):
                    classifier.predict_proba(crops[i:i + b])
                times[b].append((time.perf_counter() - start) * 1000 / len(crops))
        out[name] = {b: round(statistics.median(t), 3) for b, t in times.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=64)
    parser.add_argument("--attributes", default=None,
                        help="as `mien serve --attributes` [default: every bundled model]")
    parser.add_argument("--detector", default=None)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_load.json")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))

    photo = make_photo(data)
    counts = [int(c) for c in args.clients.split(",")]
    rest = [c for c in counts if c not in SHARES]
    left = 1 - sum(SHARES[c] for c in counts if c in SHARES)
    levels = [(c, max(c, round(args.requests * (SHARES[c] if c in SHARES
                                                else left / len(rest))))) for c in counts]
    load_avg = os.getloadavg()
    server = run_server(args, photo, levels)
    batching = classifier_batching(args, photo)

    print(f"\n{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7}")
    for r in server["levels"]:
        print(f"{r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['requests_per_s']:>7.1f} "
              f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}")
    rss = server["rss_mib"]
    print(f"detector {server['detector']}, attributes {server['attributes'] or 'none'}; server "
          f"RSS {rss['before']} MiB -> {rss['after']} MiB over {rss['requests_between']} requests")
    for name, per_face in batching.items():
        print(f"classifier {name}: " + ", ".join(f"{v} ms/face at batch {b}"
                                                 for b, v in per_face.items()))
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "load_average_at_start": load_avg,
                    "load_average_at_end": os.getloadavg()},
        "photo": "GENKI-SZSL file0001 cropped to 4:3 and resized to 640x480 JPEG "
                 f"({len(photo)} bytes), one face",
        "server": {"workers": args.workers, "queue": args.queue,
                   "attributes_option": args.attributes, "detector_option": args.detector},
        "note": "client and server share the machine's cores",
        "requests_total": sum(r["requests"] for r in server["levels"]),
        **server,
        "classifier_batching_ms_per_face": batching,
        # What pooling faces across requests could save at most: every classifier's time for
        # the photo's one face at batch 1, against the single-client request latency.
        "classifiers_share_of_request": round(
            sum(v[1] for v in batching.values()) / server["levels"][0]["p50_ms"], 4)
        if batching and server["levels"][0]["clients"] == 1 else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
