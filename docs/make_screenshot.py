"""Screenshot of the web page (`mien serve`) after a group photo was dropped on it, for the README:
the bundled detector and models, captions placed by `mien/api/static/labels.js`.

    python docs/make_screenshot.py [--photo ../shared/data/detection/voc_faces/2007_007763.jpg]
                                   [--out docs/page-group-photo.png]

Needs Chromium (`apt-get install chromium`) and Playwright (the `dev` extra). The photo is a
PASCAL VOC image from dlib's examples (Boost Software License 1.0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path,
                        default=DATA / "detection" / "voc_faces" / "2007_007763.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "page-group-photo.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not args.photo.is_file():
        raise SystemExit(f"error: {args.photo}: no such photo; give --photo")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "mien.cli.main", "serve", "--port",
                               str(port), "--workers", "1", "--log-level", "warning"])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("error: mien serve did not start; run it by hand to see why")
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1000, "height": 640})
            page.goto(url + "/")
            page.wait_for_selector("#models:has-text('expression')")
            page.set_input_files("#file", str(args.photo))
            page.wait_for_selector("body[data-state=done], body[data-state=error]",
                                   state="attached", timeout=60_000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            print(f"{args.out}: {page.inner_text('#status')}")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
