"""Detector files: YuNet bundled and checked on load; fetching from a local server, verifying
SHA-256, keeping only good bytes."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from mien.detection.files import (
    MODEL_FILES,
    bundled_model_file,
    fetch_model_file,
    find_model_file,
    sha256_of,
    verified_model_file,
)
from mien.errors import MienError, ModelFileError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over a folder; yields (folder, base url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_verifies_and_keeps_the_file(server, shared_models, tmp_path):
    root, base = server
    shutil.copy(shared_models / "yunet_s_640_640.onnx", root / "y.onnx")
    dest = tmp_path / "models"
    seen = []
    path = fetch_model_file(
        "yunet", dest, url=f"{base}/y.onnx", progress=lambda done, total: seen.append(done)
    )
    assert path == dest / MODEL_FILES["yunet"].filename
    assert sha256_of(path) == MODEL_FILES["yunet"].sha256
    assert seen[-1] == path.stat().st_size
    assert find_model_file("yunet", dest) == path
    assert [p.name for p in dest.iterdir()] == [path.name]  # no partial file left behind


def test_fetch_refuses_wrong_bytes(server, shared_models, tmp_path):
    root, base = server
    data = bytearray((shared_models / "yunet_s_640_640.onnx").read_bytes())
    data[1000] ^= 0xFF
    (root / "bad.onnx").write_bytes(bytes(data))
    dest = tmp_path / "models"
    with pytest.raises(ModelFileError, match="does not match.*not kept"):
        fetch_model_file("yunet", dest, url=f"{base}/bad.onnx")
    assert list(dest.iterdir()) == []


def test_fetch_reports_an_unreachable_url(server, tmp_path):
    _, base = server
    dest = tmp_path / "models"
    with pytest.raises(MienError, match="missing.onnx: download failed"):
        fetch_model_file("yunet", dest, url=f"{base}/missing.onnx")
    assert list(dest.iterdir()) == []


def test_a_tampered_local_file_is_refused(shared_models, tmp_path):
    copy = tmp_path / MODEL_FILES["yunet"].filename
    copy.write_bytes((shared_models / "yunet_s_640_640.onnx").read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="SHA-256 .* does not match"):
        verified_model_file("yunet", directory=tmp_path)
    with pytest.raises(ModelFileError, match="mien models fetch yunet"):
        verified_model_file("yunet", directory=tmp_path / "empty")


def test_models_fetch_command(server, shared_models, tmp_path, capsys):
    from mien.cli.main import main

    root, base = server
    shutil.copy(shared_models / "yunet_s_640_640.onnx", root / "y.onnx")
    (root / "bad.onnx").write_bytes(b"not the model")
    dest = tmp_path / "models"
    with pytest.raises(SystemExit) as exc:
        main(["models", "fetch", "yunet", "--dir", str(dest), "--url", f"{base}/y.onnx"])
    assert exc.value.code == 0
    assert str(dest / MODEL_FILES["yunet"].filename) in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(
            ["models", "fetch", "yunet", "--dir", str(tmp_path / "b"), "--url", f"{base}/bad.onnx"]
        )
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not match" in err and "Traceback" not in err
    assert list((tmp_path / "b").iterdir()) == []
    with pytest.raises(SystemExit) as exc:
        main(["models", "fetch", "nope"])
    assert exc.value.code != 0 and "unknown model file 'nope'" in capsys.readouterr().err


def test_yunet_ships_inside_mien_with_its_notice():
    path = bundled_model_file("yunet")
    spec = MODEL_FILES["yunet"]
    assert path.parent.name == "weights" and path.parent.parent.name == "models"
    assert find_model_file("yunet") == verified_model_file("yunet") == path
    assert sha256_of(path) == spec.sha256 and path.stat().st_size == 232_589
    notice = (path.parent / "yunet_s_640_640.NOTICE.md").read_text()
    for fact in (spec.sha256, "Apache License, Version 2.0", "ShiqiYu/libfacedetection.train",
                 "http://www.apache.org/licenses/LICENSE-2.0", path.name):
        assert fact in notice


def test_a_damaged_bundled_yunet_is_refused_by_name(tmp_path, monkeypatch):
    from mien.detection import create_detector, files

    damaged = tmp_path / "yunet_s_640_640.onnx"
    damaged.write_bytes(bundled_model_file("yunet").read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(files, "bundled_model_file", lambda name: damaged)
    for load in (lambda: verified_model_file("yunet"), lambda: create_detector()):
        with pytest.raises(ModelFileError) as exc:
            load()
        message = str(exc.value)
        assert message.startswith(f"{damaged}: SHA-256 ") and "reinstall mien" in message
        assert "\n" not in message
