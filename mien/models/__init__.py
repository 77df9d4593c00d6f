"""The model zoo: `create_model(name, num_classes)`, `list_models(pattern)`, `model_info(name)`.

Importing this package does not import torch; the architectures load on the first query.
"""

from mien.models.registry import ModelInfo, create_model, list_models, model_info, register_model

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]
