"""lepton.sklearn on data sets scikit-learn ships, in pipelines, with
partial_fit, named models, parameters and pickling."""
import pickle

import grpc
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lepton
from lepton.sklearn import LeptonClassifier, LeptonRegressor, close_connections


@pytest.fixture(scope="module", autouse=True)
def shared_connections(server):
    yield
    close_connections()  # before the server's SIGTERM (conftest.py)


def split(loader, stratify=True):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0,
                            stratify=y if stratify else None)


def test_pipeline_on_breast_cancer(server, client):
    X_train, X_test, y_train, y_test = split(load_breast_cancer)
    pipeline = make_pipeline(StandardScaler(),
                             LeptonClassifier(server.target, epochs=5))
    pipeline.fit(X_train, y_train)
    accuracy = pipeline.score(X_test, y_test)
    assert accuracy >= 0.93, accuracy
    clf = pipeline[-1]
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    info = client.get_model(clf.model_name_)
    assert info.spec.type == "LOGISTIC_REGRESSION"
    assert info.spec.num_features == 30
    assert info.examples_seen == 5 * len(X_train)
    assert clf.version_ == info.version == 1 + 5 * 2  # 2 batches of 256 per epoch
    proba = pipeline.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_array_equal(pipeline.predict(X_test),
                                  clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(pipeline.predict_log_proba(X_test)),
                               proba, rtol=1e-12)


def test_pipeline_on_digits(server, client):
    X_train, X_test, y_train, y_test = split(load_digits)
    pipeline = make_pipeline(StandardScaler(),
                             LeptonClassifier(server.target, epochs=5))
    accuracy = pipeline.fit(X_train, y_train).score(X_test, y_test)
    assert accuracy >= 0.93, accuracy
    info = client.get_model(pipeline[-1].model_name_)
    assert info.spec.type == "SOFTMAX_REGRESSION"
    assert info.spec.num_classes == 10
    assert pipeline.predict_proba(X_test).shape == (len(X_test), 10)


def test_regressor_on_diabetes(server):
    X_train, X_test, y_train, y_test = split(load_diabetes, stratify=False)
    ols = LinearRegression().fit(X_train, y_train).score(X_test, y_test)
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), LeptonRegressor(server.target)),
        transformer=StandardScaler())
    r2 = model.fit(X_train, y_train).score(X_test, y_test)
    assert r2 > 0.3 and r2 > ols - 0.05, (r2, ols)


def test_cross_validation(server):
    X, y = load_breast_cancer(return_X_y=True)
    scores = cross_val_score(
        make_pipeline(StandardScaler(), LeptonClassifier(server.target)),
        X, y, cv=3)
    assert len(scores) == 3 and scores.min() > 0.9, scores


def test_partial_fit_learns_online(server, client):
    X_train, X_test, y_train, y_test = split(load_digits)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    clf = LeptonClassifier(server.target, batch_size=100)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train[:100], y_train[:100])
    accuracies = []
    for start in range(0, len(X_train), 300):
        clf.partial_fit(X_train[start:start + 300], y_train[start:start + 300],
                        classes=np.arange(10))
        accuracies.append(clf.score(X_test, y_test))
    assert accuracies[-1] > 0.9 and accuracies[-1] > accuracies[0]
    assert client.get_model(clf.model_name_).examples_seen == len(X_train)
    with pytest.raises(ValueError, match="not the classes_"):
        clf.partial_fit(X_train[:5], y_train[:5], classes=np.arange(11))
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X_train[:2], [3, 12])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X_train[:5, :10], y_train[:5])


def test_partial_fit_continues_a_named_model(server, client, name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    client.create_model(name, type="logistic", num_features=3)
    clf = LeptonClassifier(server.target, model=name)
    clf.partial_fit(X, y)  # no classes: the model's, 0 and 1
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.model_name_ == name
    assert client.get_model(name).version == 2
    other = LeptonClassifier(server.target, model=name)
    other.partial_fit(X, y)  # a second estimator continues the same model
    assert client.get_model(name).version == 3
    mismatched = LeptonClassifier(server.target, model=name)
    with pytest.raises(ValueError, match="num_features"):
        mismatched.partial_fit(X[:, :2], y)
    regressor = LeptonRegressor(server.target, model=name)
    with pytest.raises(ValueError, match="LOGISTIC_REGRESSION"):
        regressor.partial_fit(X, y)


def test_fit_starts_a_fresh_model(server, client, name):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = LeptonClassifier(server.target, batch_size=100)
    clf.fit(X, y)
    first = clf.model_name_
    assert first.startswith("sklearn-leptonclassifier-")
    assert set(clf.predict(X)) <= {"yes", "no"}
    assert (clf.predict(X) == y).mean() > 0.9
    clf.fit(X, y)
    assert clf.model_name_ != first
    with pytest.raises(lepton.LeptonError) as e:
        client.get_model(first)  # the estimator's previous model is gone
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    # A named model is deleted and made again by fit.
    named = LeptonClassifier(server.target, model=name, batch_size=100)
    named.fit(X, y)
    named.fit(X, y)
    info = client.get_model(name)
    assert info.version == 4 and info.examples_seen == 300
    named.delete_model()
    with pytest.raises(NotFittedError):
        named.predict(X)
    assert name not in [m.name for m in client.list_models()]


def test_params_reach_the_model(server, client):
    X, y = load_breast_cancer(return_X_y=True)
    clf = LeptonClassifier(server.target, optimizer="ftrl", l1=0.5)
    clf.set_params(learning_rate=0.25, minibatch_size=1,
                   drift={"policy": "alert"})
    params = clf.get_params()
    assert params["learning_rate"] == 0.25 and params["optimizer"] == "ftrl"
    copy = clone(clf)
    assert copy.get_params() == params
    copy.fit(StandardScaler().fit_transform(X), y)
    spec = client.get_model(copy.model_name_).spec
    assert spec.optimizer.kind == "FTRL"
    assert spec.optimizer.learning_rate == 0.25
    assert spec.optimizer.l1 == 0.5
    assert spec.minibatch_size == 1
    assert spec.drift.policy == "ALERT"
    with pytest.raises(ValueError, match="logistic"):
        LeptonClassifier(server.target, type="logistic").fit(
            np.eye(3), [0, 1, 2])
    with pytest.raises(TypeError, match="no such setting"):
        LeptonClassifier(server.target, drift={"poilcy": "alert"}).fit(
            np.eye(2), [0, 1])


def test_pickled_estimator_uses_the_same_model(server):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = LeptonClassifier(server.target).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    assert copy.model_name_ == clf.model_name_
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X[:50], y[:50])  # the model learns; the copy sees it
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))


def test_sparse_input_and_progress(server, capsys):
    import scipy.sparse as sp
    X, y = load_digits(return_X_y=True)
    X = sp.csr_matrix(X / 16.0)
    clf = LeptonClassifier(server.target, epochs=3, verbose=1)
    assert clf.fit(X, y).score(X, y) > 0.9
    err = capsys.readouterr().err
    assert f"train {clf.model_name_}:" in err
    batches = 3 * -(-X.shape[0] // 256)  # 3 epochs of batches of 256
    assert f"{batches}/{batches} batches" in err
    assert f"{3 * X.shape[0]} examples" in err
