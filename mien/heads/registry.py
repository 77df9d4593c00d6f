"""The head registry: `@register_head` names a scikit-learn classifier for embeddings,
`create_head(name, **params)` builds it, `list_heads()` lists them.

Heads are addressed by short user-facing parameter names (`C`, `trees`, `k`) that map onto the
scikit-learn estimator's own parameter paths, so the CLI, config files and grid searches all
speak one vocabulary. scikit-learn is imported on the first registry query, never on
`import mien.heads`.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mien.errors import MienError

_HEAD_MODULES = ("mien.heads.classical",)


class UnknownHeadError(MienError):
    """A head name or head parameter that is not registered."""


@dataclass(frozen=True, slots=True)
class HeadInfo:
    name: str
    description: str
    # user name -> the estimator's parameter path (`set_params` key)
    params: Mapping[str, str]
    # the documented default grid of `--grid`, in user names
    grid: Mapping[str, tuple] = field(default_factory=dict)
    # "proba": the estimator's predict_proba; "decision": softmax of its decision_function
    # (SVMs: cheaper than Platt scaling's internal 5-fold refits, same argmax as predict)
    # "bagged-decision": the same per bagged member, averaged
    scores: Literal["proba", "decision", "bagged-decision"] = "proba"
    # user name of the parameter giving parallel jobs, if the estimator has one
    jobs_param: str | None = None


_BUILDERS: dict[str, Callable[[], Any]] = {}
_INFOS: dict[str, HeadInfo] = {}
_loaded = False


def register_head(name: str, *, params: Mapping[str, str], grid: Mapping[str, tuple] = (),
                  scores: str = "proba", jobs_param: str | None = None):
    """Register `fn() -> unfitted estimator with the head's defaults` under `name`."""

    def decorator(fn: Callable[[], Any]) -> Callable[[], Any]:
        if name in _BUILDERS:
            raise ValueError(f"head {name!r} is registered twice")
        unknown = set(dict(grid)) - set(params)
        if unknown:
            raise ValueError(f"head {name!r}: grid names unknown parameters {sorted(unknown)}")
        doc = (fn.__doc__ or "").strip().splitlines()
        _INFOS[name] = HeadInfo(name, doc[0].rstrip(".") if doc else "", dict(params),
                                {k: tuple(v) for k, v in dict(grid).items()}, scores, jobs_param)
        _BUILDERS[name] = fn
        return fn

    return decorator


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _HEAD_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_heads(pattern: str = "*") -> list[str]:
    """Registered head names matching a shell-style pattern, sorted."""
    _load()
    return sorted(n for n in _BUILDERS if fnmatch.fnmatchcase(n, pattern))


def head_info(name: str) -> HeadInfo:
    _load()
    if name not in _INFOS:
        raise UnknownHeadError(f"unknown head {name!r}: choose one of {', '.join(sorted(_INFOS))}")
    return _INFOS[name]


def grid_text(name: str) -> str:
    """The default grid as docs/heads.md writes it: `C 0.1, 1.0 x gamma scale, 0.01`."""
    return " x ".join(f"{k} {', '.join(str(v) for v in values)}"
                      for k, values in head_info(name).grid.items())


def estimator_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """User parameter names -> the estimator's `set_params` keys; unknown names are an error."""
    info = head_info(name)
    unknown = sorted(set(params) - set(info.params))
    if unknown:
        raise UnknownHeadError(f"head {name!r} has no parameter {', '.join(unknown)}; "
                               f"it takes {', '.join(info.params)}")
    return {info.params[k]: v for k, v in params.items()}


def create_head(name: str, **params: Any):
    """An unfitted `Head` of the registered kind, its defaults overridden by `params`."""
    from mien.heads.classical import Head

    info = head_info(name)
    estimator = _BUILDERS[name]()
    try:
        estimator.set_params(**estimator_params(name, params))
    except ValueError as exc:
        raise UnknownHeadError(f"head {name!r}: {exc}") from exc
    return Head(info, estimator, dict(params))
