"""`mien serve` refuses a broken setup before it listens: one line, non-zero exit."""

from __future__ import annotations

import pytest

from mien.cli.main import main


def test_missing_model_file_stops_serve_before_listening(tmp_path, capsys):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--detector", "haar", "--attributes", f"mood={missing}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(missing) in err and "\n" not in err


def test_unknown_detector_stops_serve(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--detector", "nonesuch", "--attributes", ""])
    assert exit_info.value.code == 2
    assert "unknown detector 'nonesuch'" in capsys.readouterr().err


def test_bad_option_is_a_usage_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--workers", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err


def test_header_timeout_reaches_the_server(monkeypatch, capsys):
    from mien.api import server

    started = {}
    monkeypatch.setattr(server, "run_server", lambda app, **options: started.update(options))
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--detector", "haar", "--attributes", "", "--header-timeout", "3",
              "--port", "8123"])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert started == {"host": "127.0.0.1", "port": 8123, "header_timeout_s": 3.0,
                       "log_level": "info"}


def test_pixel_limits_reach_the_service(monkeypatch, capsys):
    from mien.api import server

    apps = []
    monkeypatch.setattr(server, "run_server", lambda app, **options: apps.append(app))
    for extra, budget, request in (([], 2 * 1000, 4 * 1000),
                                   (["--pixel-budget", "1500", "--max-request-pixels", "7"],
                                    1500, 7)):
        with pytest.raises(SystemExit) as exit_info:
            main(["serve", "--detector", "haar", "--attributes", "", "--max-pixels", "1000",
                  *extra])
        assert exit_info.value.code == 0, capsys.readouterr().err
        assert apps[-1].state.service.pixels.total == budget
        assert apps[-1].state.service.settings.max_request_pixels == request
