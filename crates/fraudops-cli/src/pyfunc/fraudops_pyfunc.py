"""MLflow `python_function` loader for a fraudops model (`mlflow.pyfunc.load_model`).

Why: a data scientist holding `models:/fraud-detector@champion` in a notebook should be able to score
with it without the fraudops binary. `fraudops register` uploads this file as `code/fraudops_pyfunc.py`
beside `model.json`; the `python_function` flavor in `MLmodel` names it as the loader module.

It reads the same `model.json` that `fraudops serve` loads and scores it the way the server does:
each tree is walked from its root (a NaN goes to the node's `missing` child, otherwise `x < split_value`
goes left), the leaf values are added to `base_score` in tree order, and the probability is the logistic
of that sum. Only numpy and pandas, which MLflow itself requires, are needed. It checks the artifact's
format version but not its checksum (a SHA-256 of Rust's own JSON serialization, which Python's float
formatting does not reproduce byte for byte); `fraudops serve` verifies the same file before serving it.
"""

import json

import numpy as np
import pandas as pd

# The artifact layout this loader understands (`fraudops_model::artifact::ARTIFACT_FORMAT`).
FORMAT_VERSION = 1


class FraudopsModel:
    """The fraud probability of each row of a frame holding the model's 20 feature columns."""

    def __init__(self, artifact):
        if artifact.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"model.json format {artifact.get('format_version')} is not supported by this loader "
                f"(format {FORMAT_VERSION})"
            )
        self.model_version = artifact["model_version"]
        self.feature_names = list(artifact["feature_names"])
        self.decision_threshold = float(artifact["decision_threshold"])
        ensemble = artifact["ensemble"]
        self.base_score = float(ensemble["base_score"])
        self.trees = [
            (
                np.asarray(t["split_feature"], dtype=np.int64),
                np.asarray(t["split_value"], dtype=np.float64),
                np.asarray(t["left"], dtype=np.int64),
                np.asarray(t["right"], dtype=np.int64),
                np.asarray(t["missing"], dtype=np.int64),
                np.asarray(t["leaf_value"], dtype=np.float64),
            )
            for t in ensemble["trees"]
        ]

    def log_odds(self, x):
        """`base_score` plus every tree's leaf, for a (rows, features) float64 array."""
        rows = np.arange(x.shape[0])
        total = np.full(x.shape[0], self.base_score)
        for split_feature, split_value, left, right, missing, leaf_value in self.trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            inner = split_feature[node] >= 0
            while inner.any():
                at = node[inner]
                value = x[rows[inner], split_feature[at]]
                node[inner] = np.where(
                    np.isnan(value), missing[at], np.where(value < split_value[at], left[at], right[at])
                )
                inner = split_feature[node] >= 0
            total += leaf_value[node]
        return total

    def predict(self, model_input, params=None):
        """What `mlflow.pyfunc` calls: fraud probabilities, one per row; the columns are taken by name in
        the model's order."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise ValueError(f"input lacks the feature columns {missing}")
        x = frame[self.feature_names].to_numpy(dtype=np.float64)
        return pd.Series(1.0 / (1.0 + np.exp(-self.log_odds(x))), name="fraud_probability")


def _load_pyfunc(data_path):
    """MLflow's entry point: `data_path` is the flavor's `data`, the artifact `model.json`."""
    with open(data_path, encoding="utf-8") as f:
        return FraudopsModel(json.load(f))
