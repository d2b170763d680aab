"""Word detectors: logistic probes that learn a word from features, saved and loaded whole."""
import numpy as np

from altvoice.model.detectors import PEOPLE, WordDetectors, fit_logistic


def test_fit_logistic_recovers_a_known_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 2 * x[:, 0] - x[:, 1])))).astype(float)
    beta = fit_logistic(x, y, l2=0.0)
    assert np.allclose(beta, [0.5, 2.0, -1.0], atol=0.15)


def test_detectors_learn_words_from_features_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(600, 5)) * [1, 1, 10, 1, 1] + 3  # unscaled, off-centre
    labels = {PEOPLE: features[:, 0] > 3, "water": features[:, 2] < 3}
    detectors = WordDetectors.fit(features, labels, l2=1.0)
    found = detectors(features)
    assert set(found[0]) == {PEOPLE, "water"}
    for word, truth in labels.items():
        assert np.mean([(row[word] > 0.5) == t for row, t in zip(found, truth)]) > 0.95
    detectors.save(str(tmp_path / "d.npz"))
    again = WordDetectors.load(str(tmp_path / "d.npz"))
    assert again.words == detectors.words and again(features[:3]) == detectors(features[:3])
