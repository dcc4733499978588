"""Whether an encoder learned: a linear probe on its features and the spread of its latents (docs/ENCODERS.md).

The probe's protocol: each feature standardised with the training split's mean and standard deviation
(sklearn's StandardScaler), a multinomial logistic regression (lbfgs, L2 with C = 1) fit on the training split's
labels, its accuracy on the held-out split. At most PROBE_MAX_IMAGES images of each split are used (the first
ones, in the split's order), so the probe costs seconds on CIFAR's 50,000 training images as on the digits.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBE_MAX_IMAGES = 10_000
PROBE_MAX_ITER = 2000


def linear_probe(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test accuracy of a logistic regression on standardised features, fit on the training split."""
    n_train, n_test = min(len(train_features), PROBE_MAX_IMAGES), min(len(test_features), PROBE_MAX_IMAGES)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER))
    probe.fit(np.asarray(train_features[:n_train], dtype=np.float64), train_labels[:n_train])
    return float(probe.score(np.asarray(test_features[:n_test], dtype=np.float64), test_labels[:n_test]))


def mean_pairwise_cosine(latents: np.ndarray) -> float:
    """The mean cosine between the latents of two different images (1: every image has one direction)."""
    z = np.asarray(latents, dtype=np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    total = z.sum(axis=0)
    n = len(z)
    return float((total @ total - n) / (n * (n - 1)))
