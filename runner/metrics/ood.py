"""OOD detection: AUROC of a score that is higher for in-distribution data."""

import numpy as np
from sklearn.metrics import roc_auc_score


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve separating in-distribution (positive) from OOD scores, by sklearn."""
    labels = np.concatenate([np.ones(len(in_scores)), np.zeros(len(out_scores))])
    return float(roc_auc_score(labels, np.concatenate([in_scores, out_scores])))
