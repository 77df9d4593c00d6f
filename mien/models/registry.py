"""The model zoo registry: `@register_model` names an architecture, `create_model` builds it.

Architecture modules import torch, so they are imported on the first registry query, never on
`import mien.models`.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mien.errors import MienError, require

# One module per architecture family; each registers its models when imported.
_ARCH_MODULES = (
    "mien.models.smile",
    "mien.models.autoencoder",
    "mien.models.fer",
    "mien.models.expression",
    "mien.models.glasses",
    "mien.models.vgg",
    "mien.models.resnet",
    "mien.models.mien_net",
    "mien.models.mien_cnn",
)

Loss = Literal["cross_entropy", "squared_hinge", "bce", "mse"]  # mse: autoencoders
Task = Literal["classify", "autoencoder"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    input_size: tuple[int, int]  # (height, width) the architecture was designed for
    in_channels: int
    num_classes: int  # the class count of the report it comes from; create_model takes any
    loss: Loss = "cross_entropy"
    # Keras-style `kernel_regularizer=l2(c)` on the final layer only: add c * sum(w**2) of
    # `model.classifier.weight` to the loss (the reports' SVM-like heads, fer-f / fer-g).
    last_layer_l2: float = 0.0
    task: Task = "classify"
    description: str = ""


class UnknownModelError(MienError):
    """A model name that is not in the zoo."""


_BUILDERS: dict[str, Callable] = {}
_INFOS: dict[str, ModelInfo] = {}
_loaded = False


def register_model(name: str, **defaults) -> Callable[[Callable], Callable]:
    """Register `fn(num_classes, in_channels, input_size, **kwargs) -> nn.Module` under `name`.

    `defaults` are the ModelInfo fields; the description defaults to the docstring's first line.
    """

    def decorator(fn: Callable) -> Callable:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        defaults.setdefault("description", doc[0].rstrip(".") if doc else "")
        defaults["input_size"] = tuple(defaults["input_size"])
        _INFOS[name] = ModelInfo(name=name, **defaults)
        _BUILDERS[name] = fn
        return fn

    return decorator


def _load_architectures() -> None:
    global _loaded
    if not _loaded:
        require("torch", "train")  # the architectures are torch modules
        for module in _ARCH_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    _load_architectures()
    return sorted(n for n in _BUILDERS if fnmatch.fnmatchcase(n, pattern))


def model_info(name: str) -> ModelInfo:
    _load_architectures()
    if name not in _INFOS:
        raise UnknownModelError(
            f"unknown model {name!r}: choose one of {', '.join(sorted(_INFOS))}"
        )
    return _INFOS[name]


def create_model(
    name: str,
    num_classes: int,
    in_channels: int | None = None,
    input_size: tuple[int, int] | None = None,
    **kwargs,
):
    """Build a freshly initialised model; unset in_channels / input_size take the zoo defaults.

    Autoencoders ignore num_classes (pass 0).

    The returned module carries `arch` (its name) and `model_kwargs` (the extra options), which a
    checkpoint records so the same model can be rebuilt.
    """
    info = model_info(name)
    builder = _BUILDERS[name]
    accepted = [
        p for p in inspect.signature(builder).parameters
        if p not in ("num_classes", "in_channels", "input_size")
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        hint = f"accepted options: {', '.join(accepted)}" if accepted else "it takes no options"
        raise MienError(f"model {name!r} does not accept {', '.join(unknown)}; {hint}")
    if info.task == "autoencoder":
        num_classes = 0  # reconstructs its input; there are no classes
    elif num_classes is None or int(num_classes) < 1:
        raise MienError(
            f"model {name!r}: num_classes must be a positive integer, got {num_classes!r}"
        )
    in_channels = int(in_channels if in_channels is not None else info.in_channels)
    size = tuple(int(s) for s in (input_size if input_size is not None else info.input_size))
    if len(size) != 2 or min(size) < 1 or in_channels < 1:
        raise MienError(
            f"model {name!r}: input_size must be (height, width) and in_channels >= 1, "
            f"got {input_size!r} and {in_channels!r}"
        )
    model = builder(
        num_classes=int(num_classes), in_channels=in_channels, input_size=size, **kwargs
    )
    model.arch = name
    model.model_kwargs = dict(kwargs)
    return model
