"""Classical heads on network embeddings (SVM, random forest, k-NN, logistic regression,
bagged SVMs) and the autoencoder anomaly detector.

`create_head(name, **params)` / `list_heads()` / `head_info(name)` enter the head registry;
`mien.heads.fit.train_head` and `mien.heads.anomaly.train_anomaly` make run folders that
`mien.models.loading.load_classifier` loads. Importing this package imports neither
scikit-learn nor torch.
"""

from mien.heads.registry import HeadInfo, create_head, head_info, list_heads, register_head

__all__ = ["HeadInfo", "create_head", "head_info", "list_heads", "register_head"]
