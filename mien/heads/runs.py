"""`mien train` options -> a head run or an anomaly-detector run (None: neither was asked for)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mien.heads.config import parse_params, resolve_head_config


def train_from_options(config: str | os.PathLike | None, train_options: Mapping[str, Any],
                       head_options: Mapping[str, Any]) -> Path | None:
    head_options = dict(head_options)
    pairs = head_options.pop("head_params", None)
    if pairs:
        head_options["head_params"] = parse_params(pairs)
    resolved = resolve_head_config(config, train_options, head_options)
    if resolved is None:
        return None
    cfg, hcfg = resolved
    if not cfg.data:
        from mien.errors import MienError

        raise MienError("no data: give DATA (a folder or FER2013 CSV) or data: in --config")
    if hcfg.anomaly:
        from mien.heads.anomaly import train_anomaly

        run_dir, _ = train_anomaly(cfg, hcfg)
        return run_dir
    from mien.heads.fit import train_head

    return train_head(cfg, hcfg).run_dir
