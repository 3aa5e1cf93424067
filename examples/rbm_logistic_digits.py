"""RBM features for classification: fastgen's BernoulliRBM feeding a logistic regression.

The pipeline learns 256 binary features of scikit-learn's 8x8 digits without looking at the
labels (PCD-1, the estimator's default), then fits a logistic regression on the features
P(h = 1 | v). The same logistic regression on the 64 raw pixels is printed beside it. These
digits are small, centred and nearly linearly separable already, so expect the two to be close
(RBM features about 0.95-0.96, raw pixels about 0.96-0.97 over a few splits).

Run:  python examples/rbm_logistic_digits.py
"""
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

import fastgen

digits = load_digits()
X = digits.data / 16.0                    # grey levels 0..16 -> [0, 1], as a Bernoulli RBM expects
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.25, random_state=0,
                                                    stratify=digits.target)

rbm_features = Pipeline([
    ("rbm", fastgen.BernoulliRBM(n_components=256, learning_rate=0.06, batch_size=10, n_iter=40,
                                 random_state=0)),
    ("logistic", LogisticRegression(C=100.0, max_iter=3000)),
])
raw_pixels = LogisticRegression(C=10.0, max_iter=3000)

rbm_features.fit(X_train, y_train)
raw_pixels.fit(X_train, y_train)
print(f"test accuracy on {len(y_test)} held-out digits ({len(y_train)} for training):")
print(f"  RBM features (256) + logistic regression: {rbm_features.score(X_test, y_test):.3f}")
print(f"  logistic regression on the raw pixels:    {raw_pixels.score(X_test, y_test):.3f}")
