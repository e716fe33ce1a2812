"""LeptonError: the gRPC code and the field path of the server's errors
(docs/api.md#errors), on every method that can name a field, and the parser
of paths on its own."""
import pickle

import grpc
import numpy as np
import pytest

import lepton
from lepton.errors import field_path
from lepton.v1 import lepton_pb2 as pb

from conftest import ServerProcess

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def raises(call, *args, **kwargs):
    with pytest.raises(lepton.LeptonError) as e:
        call(*args, **kwargs)
    return e.value


@pytest.fixture(scope="module")
def models(client):
    """A logistic (D = 3), a softmax (D = 3, K = 3) and a linear model."""
    names = {"logistic": "errors-logistic", "softmax": "errors-softmax",
             "linear": "errors-linear"}
    handles = {
        "logistic": client.create_model(names["logistic"], type="logistic",
                                        num_features=3),
        "softmax": client.create_model(names["softmax"], type="softmax",
                                       num_features=3, num_classes=3),
        "linear": client.create_model(names["linear"], type="linear",
                                      num_features=3),
    }
    yield handles
    for model in handles.values():
        model.delete()


def test_field_paths_need_fields_of_the_request():
    update = pb.UpdateRequest.DESCRIPTOR
    assert field_path(update, "examples[7].features.dense[0]: not finite") \
        == "examples[7].features.dense[0]"
    assert field_path(update, "examples: must not be empty") == "examples"
    assert field_path(update, "examples[3].features.namespaces[1].features[0]"
                      ".name: must not be empty") \
        == "examples[3].features.namespaces[1].features[0].name"
    # Not a field of UpdateRequest, or not a path at all.
    assert field_path(update, "guardrail: this update would raise ...") is None
    assert field_path(update, 'model "x" not found') is None
    assert field_path(update, "version 3 of model \"x\" is ...") is None
    assert field_path(update, "lepton.v1.ModelService/Update: needs role "
                      "writer") is None
    # An index on a field that is not repeated; a field inside a list named
    # without its index.
    assert field_path(update, "model[0]: x") is None
    assert field_path(update, "examples.label: x") is None
    assert field_path(pb.CreateModelRequest.DESCRIPTOR,
                      "spec.drift.boost_factor: must be in [1, 1000]") \
        == "spec.drift.boost_factor"
    assert field_path(pb.CreateModelRequest.DESCRIPTOR,
                      "max_models: the server holds 3") is None


def test_create_model_errors(client, models):
    cases = [
        (dict(name="bad name!", type="logistic", num_features=1), "name"),
        (dict(name="", type="logistic", num_features=1), "name"),
        (dict(name="e1", type="logistic", num_features=0), "spec.num_features"),
        (dict(name="e2", type="softmax", num_features=2, num_classes=1),
         "spec.num_classes"),
        (dict(name="e3", type="logistic", num_features=2, l2=-1), "spec.l2"),
        (dict(name="e4", type="logistic", num_features=2, optimizer="sgd",
              power_t=-1), "spec.optimizer.power_t"),
        (dict(name="e5", type="logistic", num_features=2,
              drift={"policy": "boost", "boost_factor": 0.5}),
         "spec.drift.boost_factor"),
        (dict(name="e6", type="logistic", num_features=2,
              interactions=["ua", "abc"]), "spec.interactions[1]"),
        (dict(name="e7", type=7, num_features=2), "spec.type"),
    ]
    for kwargs, field in cases:
        error = raises(client.create_model, **kwargs)
        assert (error.code, error.field) == (INVALID, field), kwargs
        assert error.method == "CreateModel"
        assert error.message.startswith(field + ": ")
    taken = raises(client.create_model, "errors-logistic", type="logistic",
                   num_features=3)
    assert taken.code == grpc.StatusCode.ALREADY_EXISTS and taken.field is None


def test_not_found(client):
    for call in (lambda: client.get_model("no-such-model"),
                 lambda: client.delete_model("no-such-model"),
                 lambda: client.model("no-such-model").predict([[1.0]]),
                 lambda: client.model("no-such-model").update([[1.0]], [0]),
                 lambda: client.model("no-such-model").export(),
                 lambda: client.model("no-such-model").rollback(1)):
        error = raises(call)
        assert error.code == grpc.StatusCode.NOT_FOUND
        assert error.field is None
        assert '"no-such-model"' in error.message


def test_predict_errors(models):
    model = models["softmax"]
    cases = [
        (np.ones((2, 4)), "instances[0].dense"),
        (np.array([[1, 2, 3], [1, 2, np.inf]]), "instances[1].dense[2]"),
        ([{0: 1.0, 5: 2.0}], "instances[0].indices[1]"),
        ([{"ns": {"": 1.0}}], "instances[0].namespaces[0].features[0].name"),
        ([{"ns": {"f": np.nan}}], "instances[0].namespaces[0].features[0].value"),
        (np.ones((0, 3)), "instances"),
    ]
    for X, field in cases:
        error = raises(model.predict, X)
        assert (error.code, error.field) == (INVALID, field), field
        assert error.method == "Predict"


def test_update_errors(models):
    X = np.ones((4, 3))
    logistic, softmax, linear = (models["logistic"], models["softmax"],
                                 models["linear"])
    version = logistic.info().version
    cases = [
        (lambda: logistic.update(X, [0, 1, 1, 2]), "examples[3].label"),
        (lambda: softmax.update(X, [0, 1, 3, 0]), "examples[2].label"),
        (lambda: softmax.update(X, [0, 0.5, 1, 0]), "examples[1].label"),
        (lambda: linear.update(X, [0, np.nan, 1, 0]), "examples[1].label"),
        (lambda: logistic.update(X, [0, 1, 1, 0], weight=[1, 1, -1, 1]),
         "examples[2].weight"),
        (lambda: logistic.update(X, [0, 1, 1, 0], learning_rate=-1),
         "learning_rate"),
        (lambda: logistic.update(X, [0, 1, 1, 0], epochs=5000), "epochs"),
        (lambda: logistic.update(X, [0, 1, 1, 0], update_id="x" * 129),
         "update_id"),
        (lambda: logistic.update([{"u": {"": 1}}], [1]),
         "examples[0].features.namespaces[0].features[0].name"),
        (lambda: logistic.update(np.ones((0, 3)), []), "examples"),
    ]
    for call, field in cases:
        error = raises(call)
        assert (error.code, error.field) == (INVALID, field), field
    # A rejected update changes nothing.
    assert logistic.info().version == version


def test_other_methods_name_their_fields(client, models):
    model = models["softmax"]
    error = raises(model.rollback, 0)
    assert (error.code, error.field) == (INVALID, "version")
    error = raises(model.rollback, 10**6)
    assert (error.code, error.field) == (grpc.StatusCode.NOT_FOUND, None)
    error = raises(client.import_model, b"LEPTNMDL" + b"\0" * 64, name="imp")
    assert (error.code, error.field) == (INVALID, "model")
    error = raises(model.add_classes, 2)
    assert (error.code, error.field) == (INVALID, "num_classes")
    error = raises(models["logistic"].add_classes, 3)
    assert (error.code, error.field) == (grpc.StatusCode.FAILED_PRECONDITION,
                                         "num_classes")
    error = raises(client.watch_model, "")
    assert (error.code, error.field) == (INVALID, "name")


def test_guardrail_refusal_names_no_field(client):
    model = client.create_model(
        "errors-guarded", type="logistic", num_features=1,
        guardrail={"policy": "reject", "min_holdout": 10, "tolerance": 0.01})
    X = np.array([[1.0], [-1.0]] * 20)
    y = np.array([1, 0] * 20)
    model.update(X, y, holdout=True)
    model.update(X, y, epochs=5)
    version = model.info().version
    error = raises(model.update, X, 1 - y, learning_rate=5.0)  # flipped labels
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message.startswith("guardrail: ")
    assert error.field is None
    assert model.info().version == version
    assert model.info().validation.refused_updates == 1


def test_unavailable_server():
    with lepton.Client("127.0.0.1:1", timeout=5) as client:
        error = raises(client.list_models)
    assert error.code == grpc.StatusCode.UNAVAILABLE and error.field is None
    assert "(UNAVAILABLE)" in str(error)


def test_server_limits(tmp_path):
    server = ServerProcess(tmp_path, ["--max_batch=10",
                                      "--prediction_cache_entries=0",
                                      "--max_models=1"], data=False)
    try:
        with lepton.Client(server.target) as client:
            model = client.create_model("limited", type="logistic",
                                        num_features=2)
            error = raises(model.update, np.ones((11, 2)), np.ones(11))
            assert (error.code, error.field) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED, "examples")
            error = raises(model.predict, np.ones((11, 2)), batch_size=11)
            assert (error.code, error.field) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED, "instances")
            # Client.predict splits X into requests of at most batch_size.
            assert model.predict(np.ones((11, 2)), batch_size=10).shape == (11,)
            error = raises(model.predict, np.ones((1, 2)),
                           return_prediction_ids=True)
            assert (error.code, error.field) == (
                grpc.StatusCode.FAILED_PRECONDITION, "return_prediction_ids")
            error = raises(client.create_model, "second", type="logistic",
                           num_features=2)
            assert (error.code, error.field) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED, None)
    finally:
        assert server.stop() == 0, server.log_text()


def test_errors_pickle_and_print():
    error = lepton.LeptonError(INVALID, "examples[1].label: must be 0 or 1",
                               "Update", "examples[1].label")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.method, copy.field) == (
        error.code, error.message, error.method, error.field)
    assert str(copy) == ("Update: examples[1].label: must be 0 or 1 "
                         "(INVALID_ARGUMENT)")
