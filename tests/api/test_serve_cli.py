"""`mien serve` refuses a broken setup before it listens: one line, non-zero exit."""

from __future__ import annotations

import pytest

from mien.cli.main import main
from mien.errors import MienError


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


@pytest.mark.parametrize(("fine_scale", "expected"), [(None, 3.0), (0, None), (1.5, 1.5)])
def test_the_server_sets_yunets_fine_view(make_app, fine_scale, expected):
    """`mien serve --fine-scale`: the bound on the seconds one large photo takes (0: off)."""
    from mien.api.service import AnalyzeOptions

    app = make_app(detector="yunet", fine_scale=fine_scale)
    detector = app.state.service._detector(AnalyzeOptions(detector="yunet", min_face=6,
                                                          max_faces=200))
    assert detector.fine_scale == expected
    haar = app.state.service._detector(AnalyzeOptions(detector="haar", min_face=6, max_faces=200))
    assert haar.name == "haar"  # other detectors have no fine view and are built as before


def test_a_negative_fine_scale_is_refused(make_app):
    with pytest.raises(MienError, match="fine_scale"):
        make_app(fine_scale=-1)
