"""scikit-learn estimators backed by a model on a Lepton server.

  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler
  from lepton.sklearn import LeptonClassifier

  clf = make_pipeline(StandardScaler(),
                      LeptonClassifier("localhost:50051", learning_rate=0.1))
  clf.fit(X_train, y_train)
  clf.score(X_test, y_test)

The estimator holds no weights: they live in the server's model, named
`model` (or, with model=None, a fresh "sklearn-..." name chosen by fit or
the first partial_fit, in `model_name_`). So a fitted estimator pickles as
its target and model name, and other clients can predict from the same model
while it learns.

- fit(X, y) starts a fresh model: with model=None a new one under a new name
  (the one this estimator made before is deleted); with a model name, that
  model is deleted and created again. It streams X in batches of
  `batch_size` through one StreamUpdate call, `epochs` times over, in order
  (online learning: no shuffling).
- partial_fit(X, y) learns from X once, continuing the model. Its first call
  creates the model, or continues an existing model named `model` (whose
  classes are then 0..K-1 unless `classes` is given).
- Every keyword of lepton.Client.create_model's spec is a parameter here
  (optimizer, learning_rate, l2, minibatch_size, ...); None leaves the
  server's default.

Models made with model=None stay on the server after the estimator is gone
(cross-validation makes one per fit); delete_model() removes the current one.
"""
import threading
import uuid

import grpc
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from lepton.client import Client
from lepton.errors import LeptonError

__all__ = ["LeptonClassifier", "LeptonRegressor", "close_connections"]

# The ModelSpec settings an estimator passes to create_model (build_spec).
SPEC_PARAMS = ("optimizer", "learning_rate", "power_t", "epsilon",
               "initial_accumulator", "beta", "l1", "beta1", "beta2", "l2",
               "minibatch_size", "interactions", "hash_seed",
               "max_gradient_norm", "max_step", "drift", "guardrail")

_clients = {}
_clients_lock = threading.Lock()


def _client_for(target, token, tls, client_options):
    """One Client (one channel) per distinct connection setting, shared by
    the estimators of the process; estimators hold no channel, so they
    pickle and clone."""
    options = dict(client_options or {})
    key = (target, token, repr(tls), repr(sorted(options.items())))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = Client(target, token=token, tls=tls, **options)
            _clients[key] = client
        return client


def close_connections():
    """Closes the connections the estimators of this process share (calls in
    flight are cancelled); the next call opens new ones. A server's SIGTERM
    drain waits a few seconds for each open idle connection, so close them
    before stopping a server you started."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


class _LeptonEstimator(BaseEstimator):
    def _client(self):
        return _client_for(self.target, self.token, self.tls,
                           self.client_options)

    def _spec(self):
        return {k: getattr(self, k) for k in SPEC_PARAMS
                if getattr(self, k) is not None}

    def _fresh_name(self):
        return f"sklearn-{self.__class__.__name__.lower()}-{uuid.uuid4().hex[:16]}"

    def _delete_quietly(self, name):
        try:
            self._client().delete_model(name)
        except LeptonError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise

    def _create(self, name, model_type, num_features, num_classes):
        self._client().create_model(name, type=model_type,
                                    num_features=num_features,
                                    num_classes=num_classes, **self._spec())

    def _start_fresh(self, model_type, num_features, num_classes):
        """fit's model: the one named `model` made again, or a new name."""
        if self.model is not None:
            name = self.model
            self._delete_quietly(name)
        else:
            previous = getattr(self, "model_name_", None)
            if previous is not None and previous.startswith("sklearn-"):
                self._delete_quietly(previous)
            name = self._fresh_name()
        self._create(name, model_type, num_features, num_classes)
        return name

    def _existing_spec(self):
        """The spec of the model named `model`, or None if there is none."""
        if self.model is None:
            return None
        try:
            return self._client().get_model(self.model).spec
        except LeptonError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def _learn(self, X, labels, sample_weight, epochs):
        """Streams (X, labels[, weights]) in batches of batch_size, epochs
        times, through one StreamUpdate; sets version_."""
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        n = X.shape[0]

        def batches():
            for _ in range(epochs):
                for start in range(0, n, self.batch_size):
                    stop = start + self.batch_size
                    if sample_weight is None:
                        yield (X[start:stop], labels[start:stop])
                    else:
                        yield (X[start:stop], labels[start:stop],
                               sample_weight[start:stop])

        total = epochs * ((n + self.batch_size - 1) // self.batch_size)
        result = self._client().stream_update(
            self.model_name_, batches(), progress=self.verbose > 0,
            total=total)
        self.version_ = result.version
        return result

    def _check_X(self, X, reset):
        return self._validate_data(X, accept_sparse="csr",
                                   dtype=(np.float64, np.float32), reset=reset)

    def _weights(self, sample_weight, X):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64)

    def _predict_result(self, X):
        check_is_fitted(self, "model_name_")
        X = self._check_X(X, reset=False)
        return self._client().predict(self.model_name_, X)

    def delete_model(self):
        """Deletes the server's model this estimator uses (model_name_); the
        estimator is then unfitted."""
        check_is_fitted(self, "model_name_")
        self._delete_quietly(self.model_name_)
        del self.model_name_


class LeptonClassifier(ClassifierMixin, _LeptonEstimator):
    """A classifier whose weights live in a Lepton model.

    Parameters:
      target:   the server ("host:port" or any gRPC target).
      model:    the model's name; None: a fresh name per fit.
      type:     "logistic" (two classes only) or "softmax"; None: logistic
                for two classes, softmax for more.
      optimizer, learning_rate, power_t, epsilon, initial_accumulator,
      beta, l1, beta1, beta2, l2, minibatch_size, interactions, hash_seed,
      max_gradient_norm, max_step, drift, guardrail:
                the model's spec (lepton.Client.create_model); None: the
                server's default.
      epochs:   passes over the data in fit (partial_fit makes one).
      batch_size: examples per Update request.
      verbose:  > 0 draws a progress bar on stderr while learning.
      token, tls, client_options: as lepton.Client's token, tls and other
                keyword arguments (tls_cert, tls_key, tls_server_name,
                token_file, timeout, ...).

    Attributes after fitting: classes_, n_features_in_ (and
    feature_names_in_), model_name_ (the server's model), version_ (its
    version after the last fit or partial_fit).
    """

    def __init__(self, target="localhost:50051", model=None, *, type=None,
                 optimizer=None, learning_rate=None, power_t=None,
                 epsilon=None, initial_accumulator=None, beta=None, l1=None,
                 beta1=None, beta2=None, l2=None, minibatch_size=None,
                 interactions=None, hash_seed=None, max_gradient_norm=None,
                 max_step=None, drift=None, guardrail=None, epochs=1,
                 batch_size=256, verbose=0, token=None, tls=None,
                 client_options=None):
        self.target = target
        self.model = model
        self.type = type
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.epsilon = epsilon
        self.initial_accumulator = initial_accumulator
        self.beta = beta
        self.l1 = l1
        self.beta1 = beta1
        self.beta2 = beta2
        self.l2 = l2
        self.minibatch_size = minibatch_size
        self.interactions = interactions
        self.hash_seed = hash_seed
        self.max_gradient_norm = max_gradient_norm
        self.max_step = max_step
        self.drift = drift
        self.guardrail = guardrail
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.token = token
        self.tls = tls
        self.client_options = client_options

    def _model_type(self, num_classes):
        kind = (self.type or ("logistic" if num_classes == 2 else "softmax"))
        kind = kind.lower()
        if kind in ("logistic", "logistic_regression"):
            if num_classes != 2:
                raise ValueError(f"type='logistic' needs exactly 2 classes, "
                                 f"got {num_classes}")
            return "logistic", None
        if kind in ("softmax", "softmax_regression"):
            return "softmax", num_classes
        raise ValueError(f"type must be 'logistic' or 'softmax', got "
                         f"{self.type!r}")

    @staticmethod
    def _check_classes(classes):
        if len(classes) < 2:
            raise ValueError(
                "LeptonClassifier needs at least 2 classes; got 1 class "
                f"({classes[0]!r})" if len(classes) else
                "LeptonClassifier needs at least 2 classes; got 0 classes")

    def _indices(self, y):
        indices = np.searchsorted(self.classes_, y)
        indices = np.clip(indices, 0, len(self.classes_) - 1)
        unknown = self.classes_[indices] != y
        if np.any(unknown):
            raise ValueError(f"y has labels not in classes_ "
                             f"{list(self.classes_)}: "
                             f"{sorted(set(np.asarray(y)[unknown].tolist()))}")
        return indices

    def fit(self, X, y, sample_weight=None):
        """Learns from (X, y) in a fresh model (see the module's comment)."""
        X, y = self._validate_data(X, y, accept_sparse="csr",
                                   dtype=(np.float64, np.float32))
        check_classification_targets(y)
        classes = np.unique(y)
        self._check_classes(classes)
        model_type, num_classes = self._model_type(len(classes))
        weights = self._weights(sample_weight, X)
        self.classes_ = classes
        self.model_name_ = self._start_fresh(model_type, X.shape[1],
                                             num_classes)
        self._learn(X, self._indices(y), weights, self.epochs)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Learns from (X, y) once, continuing the model. The first call
        needs `classes` (every label there will be), unless `model` names an
        existing model (classes 0..K-1)."""
        first = not hasattr(self, "model_name_")
        X, y = self._validate_data(X, y, accept_sparse="csr",
                                   dtype=(np.float64, np.float32), reset=first)
        check_classification_targets(y)
        if first:
            spec = self._existing_spec()
            if classes is None:
                if spec is None:
                    raise ValueError("classes must be passed on the first "
                                     "call to partial_fit (or name an "
                                     "existing model)")
                classes = np.arange(spec.num_classes
                                    if spec.type == "SOFTMAX_REGRESSION" else 2)
            classes = np.unique(classes)
            self._check_classes(classes)
            model_type, num_classes = self._model_type(len(classes))
            if spec is not None:
                have = (spec.type, spec.num_features,
                        spec.num_classes if spec.type == "SOFTMAX_REGRESSION"
                        else 2)
                want = ("SOFTMAX_REGRESSION" if model_type == "softmax"
                        else "LOGISTIC_REGRESSION", X.shape[1], len(classes))
                if have != want:
                    raise ValueError(
                        f"model {self.model!r} is (type, num_features, "
                        f"classes) = {have}, these data need {want}")
                name = self.model
            else:
                name = self.model or self._fresh_name()
                self._create(name, model_type, X.shape[1], num_classes)
            self.classes_ = classes
            self.model_name_ = name
        elif classes is not None and not np.array_equal(np.unique(classes),
                                                        self.classes_):
            raise ValueError(f"classes={list(classes)} is not the classes_ "
                             f"of the first call, {list(self.classes_)}")
        weights = self._weights(sample_weight, X)
        self._learn(X, self._indices(y), weights, 1)
        return self

    def predict(self, X):
        """The predicted class of each row, as labels of classes_."""
        labels = self._predict_result(X).labels
        return self.classes_[labels]

    def predict_proba(self, X):
        """Class probabilities, n x len(classes_), columns as classes_."""
        result = self._predict_result(X)
        if result.probabilities is not None:
            return result.probabilities.astype(np.float64)
        p = result.values.astype(np.float64)
        return np.column_stack([1 - p, p])

    def predict_log_proba(self, X):
        """The log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _more_tags(self):
        return {"requires_y": True, "X_types": ["2darray", "sparse"]}


class LeptonRegressor(RegressorMixin, _LeptonEstimator):
    """A linear regressor (squared loss) whose weights live in a Lepton model.

    Parameters and attributes as LeptonClassifier's, without type and
    classes_.
    """

    def __init__(self, target="localhost:50051", model=None, *,
                 optimizer=None, learning_rate=None, power_t=None,
                 epsilon=None, initial_accumulator=None, beta=None, l1=None,
                 beta1=None, beta2=None, l2=None, minibatch_size=None,
                 interactions=None, hash_seed=None, max_gradient_norm=None,
                 max_step=None, drift=None, guardrail=None, epochs=1,
                 batch_size=256, verbose=0, token=None, tls=None,
                 client_options=None):
        self.target = target
        self.model = model
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.epsilon = epsilon
        self.initial_accumulator = initial_accumulator
        self.beta = beta
        self.l1 = l1
        self.beta1 = beta1
        self.beta2 = beta2
        self.l2 = l2
        self.minibatch_size = minibatch_size
        self.interactions = interactions
        self.hash_seed = hash_seed
        self.max_gradient_norm = max_gradient_norm
        self.max_step = max_step
        self.drift = drift
        self.guardrail = guardrail
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.token = token
        self.tls = tls
        self.client_options = client_options

    def fit(self, X, y, sample_weight=None):
        """Learns from (X, y) in a fresh model (see the module's comment)."""
        X, y = self._validate_data(X, y, accept_sparse="csr",
                                   dtype=(np.float64, np.float32),
                                   y_numeric=True)
        weights = self._weights(sample_weight, X)
        self.model_name_ = self._start_fresh("linear", X.shape[1], None)
        self._learn(X, y, weights, self.epochs)
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """Learns from (X, y) once, continuing the model (an existing model
        named `model`, or the one the first call creates)."""
        first = not hasattr(self, "model_name_")
        X, y = self._validate_data(X, y, accept_sparse="csr",
                                   dtype=(np.float64, np.float32),
                                   y_numeric=True, reset=first)
        if first:
            spec = self._existing_spec()
            if spec is not None:
                if (spec.type, spec.num_features) != ("LINEAR_REGRESSION",
                                                      X.shape[1]):
                    raise ValueError(
                        f"model {self.model!r} is (type, num_features) = "
                        f"{(spec.type, spec.num_features)}, these data need "
                        f"('LINEAR_REGRESSION', {X.shape[1]})")
                name = self.model
            else:
                name = self.model or self._fresh_name()
                self._create(name, "linear", X.shape[1], None)
            self.model_name_ = name
        weights = self._weights(sample_weight, X)
        self._learn(X, y, weights, 1)
        return self

    def predict(self, X):
        """The predicted value of each row."""
        return self._predict_result(X).values.astype(np.float64)

    def _more_tags(self):
        return {"requires_y": True, "X_types": ["2darray", "sparse"]}
