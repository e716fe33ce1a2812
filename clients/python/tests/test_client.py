"""lepton.Client and lepton.Model against a real lepton_server: every RPC,
each form of X, and the request encoding against the generated classes."""
import datetime
import io
import os
import pathlib

import grpc
import numpy as np
import pytest
import scipy.sparse as sp

import lepton
from lepton import _encode
from lepton.v1 import lepton_pb2 as pb


def blobs(n, d, k, seed):
    """n points of k well separated classes in d dimensions."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


# --- the package as installed -------------------------------------------


def test_imported_from_pythonpath_with_generated_stubs():
    """`import lepton` finds the build's package (PYTHONPATH=build/python),
    its stubs beside it, and none in the source tree."""
    package = pathlib.Path(lepton.__file__).resolve().parent
    pythonpath = [pathlib.Path(p).resolve()
                  for p in os.environ["PYTHONPATH"].split(os.pathsep) if p]
    assert package.parent in pythonpath
    assert (package / "v1" / "lepton_pb2.py").is_file()
    assert (package / "v1" / "lepton_pb2_grpc.py").is_file()
    source = pathlib.Path(os.environ["LEPTON_SOURCE_DIR"])
    committed = list((source / "clients" / "python").rglob("*_pb2*.py"))
    assert committed == []


def test_every_rpc_has_a_client_method():
    """A new RPC in the proto fails this test until the Client has it."""
    from lepton._stubs import SERVICE
    methods = {
        "CreateModel": "create_model", "GetModel": "get_model",
        "ListModels": "list_models", "DeleteModel": "delete_model",
        "Predict": "predict", "Update": "update",
        "StreamUpdate": "stream_update", "Rollback": "rollback",
        "AddClasses": "add_classes", "ExportModel": "export_model",
        "ImportModel": "import_model", "WatchModel": "watch_model",
    }
    assert set(methods) == {m.name for m in SERVICE.methods}
    for name in methods.values():
        assert callable(getattr(lepton.Client, name))


# --- encoding (no server) -----------------------------------------------


def test_dense_instances_encode_as_the_generated_classes():
    X = np.array([[1.5, -2.0, 0.0], [3.25, 1e-30, -7.0]], dtype=np.float64)
    data = _encode.Instances(X).instances_bytes()
    expected = pb.PredictRequest(instances=[
        pb.Features(dense=[1.5, -2.0, 0.0]),
        pb.Features(dense=[3.25, 1e-30, -7.0])])
    assert pb.PredictRequest.FromString(data) == expected


def test_dense_examples_encode_as_the_generated_classes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 40)).astype(np.float32)  # 160-byte rows: 2-byte lengths
    y = np.array([0, 1, 2, 1, 0])
    w = np.array([1, 0.5, 2, 0, 3])
    h = np.array([False, True, False, False, True])
    data = _encode.Instances(X).examples_bytes(
        np.asarray(y, np.float32), np.asarray(w, np.float32), h)
    expected = pb.UpdateRequest(examples=[
        pb.Example(features=pb.Features(dense=X[i].tolist()), label=y[i],
                   weight=w[i], holdout=bool(h[i])) for i in range(5)])
    assert pb.UpdateRequest.FromString(data) == expected
    # Without weights the field is absent (absent means 1), not 0.
    data = _encode.Instances(X).examples_bytes(np.asarray(y, np.float32))
    for example in pb.UpdateRequest.FromString(data).examples:
        assert not example.HasField("weight")


def test_sparse_and_dict_instances_encode_as_the_generated_classes():
    csr = sp.csr_matrix(np.array([[0, 2.0, 0, 1.0], [0, 0, 0, 0]]))
    data = _encode.Instances(csr).instances_bytes()
    assert pb.PredictRequest.FromString(data) == pb.PredictRequest(instances=[
        pb.Features(indices=[1, 3], values=[2.0, 1.0]), pb.Features()])
    # A COO matrix with a repeated entry: converted, the repeats summed.
    coo = sp.coo_matrix(([1.0, 2.0], ([0, 0], [2, 2])), shape=(1, 4))
    data = _encode.Instances(coo).instances_bytes()
    assert pb.PredictRequest.FromString(data).instances[0] == pb.Features(
        indices=[2], values=[3.0])

    rows = [{"user": {"age": 3, "city": "paris", "vip": True, "gone": None},
             "ad": ["id123"], "hour": 13, 7: 0.5}]
    features = pb.PredictRequest.FromString(
        _encode.Instances(rows).instances_bytes()).instances[0]
    namespaces = {ns.name: ns for ns in features.namespaces}
    assert set(namespaces) == {"user", "ad", ""}
    user = {(f.name, f.value if f.HasField("value") else None)
            for f in namespaces["user"].features}
    assert user == {("age", 3.0), ("city=paris", None), ("vip", None)}
    assert [(f.name, f.HasField("value")) for f in namespaces["ad"].features] \
        == [("id123", False)]
    assert [(f.name, f.value) for f in namespaces[""].features] == [("hour", 13.0)]
    assert list(features.indices) == [7] and list(features.values) == [0.5]


def test_build_spec_names_and_errors():
    spec = lepton.build_spec(type="softmax", num_features=5, num_classes=3,
                             optimizer="ftrl", learning_rate=0.2, l1=0.5,
                             interactions="ua,uu",
                             drift={"detector": "page_hinkley",
                                    "policy": "boost"},
                             guardrail={"policy": "reject",
                                        "holdout_capacity": 0})
    assert spec.type == pb.SOFTMAX_REGRESSION
    assert spec.optimizer.kind == pb.FTRL
    assert spec.optimizer.learning_rate == pytest.approx(0.2)
    assert spec.optimizer.l1 == 0.5
    assert list(spec.interactions) == ["ua", "uu"]
    assert spec.drift.detector == pb.PAGE_HINKLEY
    assert spec.drift.policy == pb.BOOST
    assert spec.guardrail.policy == pb.GUARDRAIL_REJECT
    # An optional field set to 0 is sent (0 refuses holdout examples).
    assert spec.guardrail.HasField("holdout_capacity")
    with pytest.raises(TypeError, match="learning_rat"):
        lepton.build_spec(type="linear", num_features=1, learning_rat=0.1)
    with pytest.raises(ValueError, match="spec.type"):
        lepton.build_spec(type="quadratic", num_features=1)


# --- every RPC ----------------------------------------------------------


def test_health_and_wait_ready(client):
    client.wait_ready(timeout=5)
    assert client.health() == "SERVING"
    assert client.health("lepton.v1.ModelService") == "SERVING"
    with pytest.raises(lepton.LeptonError) as e:
        client.health("no.such.Service")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_create_get_list_delete(client, name):
    model = client.create_model(
        name, type="softmax", num_features=6, num_classes=3, optimizer="sgd",
        learning_rate=0.1, l2=0.001, minibatch_size=1, interactions=["ua"],
        hash_seed=7, drift={"policy": "alert"},
        guardrail={"policy": "reject", "holdout_capacity": 100})
    assert isinstance(model, lepton.Model) and model.name == name
    assert model.type == "SOFTMAX_REGRESSION"
    info = client.get_model(name)
    assert info.name == name and info.version == 1
    assert info.spec.num_features == 6 and info.spec.num_classes == 3
    assert info.spec.optimizer.kind == "SGD"
    assert info.spec.optimizer.learning_rate == 0.1
    assert info.spec.l2 == 0.001
    assert info.spec.minibatch_size == 1
    assert info.spec.interactions == ["ua"] and info.spec.hash_seed == 7
    assert info.spec.drift.policy == "ALERT"
    assert info.spec.guardrail.policy == "GUARDRAIL_REJECT"
    assert info.spec.guardrail.holdout_capacity == 100
    assert isinstance(info.create_time, datetime.datetime)
    assert info.create_time.tzinfo is not None
    assert info.to_dict()["spec"]["optimizer"]["kind"] == "SGD"
    assert name in [m.name for m in client.list_models()]
    model.delete()
    with pytest.raises(lepton.LeptonError) as e:
        client.get_model(name)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert name not in [m.name for m in client.list_models()]


def test_softmax_learns_and_predicts(client, name):
    X, y = blobs(600, 5, 4, seed=2)
    model = client.create_model(name, type="softmax", num_features=5,
                                num_classes=4, learning_rate=0.5)
    versions = []
    for _ in range(3):
        r = model.update(X, y)
        versions.append(r.version)
        assert r.examples == 600
        assert r.accuracy_before is not None and 0 <= r.accuracy_before <= 1
    assert versions == [2, 3, 4]
    labels = model.predict(X)
    assert labels.shape == (600,) and labels.dtype == np.int64
    assert (labels == y).mean() > 0.9
    proba = model.predict_proba(X)
    assert proba.shape == (600, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert (proba.argmax(axis=1) == labels).all()
    full = model.predict_full(X[:10])
    assert full.version == 4 and len(full) == 10
    np.testing.assert_array_equal(full.values, proba[:10].max(axis=1))
    info = model.info()
    assert info.version == 4 and info.examples_seen == 1800 and info.updates == 3


def test_logistic_proba_has_two_columns(client, name):
    X, y = blobs(400, 3, 2, seed=3)
    model = client.create_model(name, type="logistic", num_features=3)
    model.update(X, y, epochs=3, learning_rate=0.5)
    full = model.predict_full(X)
    assert full.probabilities is None
    proba = model.predict_proba(X)
    assert proba.shape == (400, 2)
    np.testing.assert_allclose(proba[:, 1], full.values, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    labels = model.predict(X)
    np.testing.assert_array_equal(labels, (full.values >= 0.5).astype(int))
    assert (labels == y).mean() > 0.9


def test_linear_predicts_values(client, name):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 2))
    y = 2 * X[:, 0] - X[:, 1] + 0.5
    model = client.create_model(name, type="linear", num_features=2,
                                learning_rate=0.5)
    r = model.update(X, y, epochs=5)
    assert r.accuracy_before is None
    values = model.predict(X)
    assert values.dtype == np.float32
    assert np.sqrt(np.mean((values - y) ** 2)) < 0.1
    with pytest.raises(ValueError, match="predicts values"):
        model.predict_proba(X)


def test_dense_sparse_and_dicts_give_the_same_predictions(client, name):
    X, y = blobs(300, 6, 3, seed=5)
    X[np.abs(X) < 1] = 0  # zeros, so that the sparse forms differ from dense
    model = client.create_model(name, type="softmax", num_features=6,
                                num_classes=3)
    model.update(X, y)
    dense = model.predict_full(X)
    csr = model.predict_full(sp.csr_matrix(X))
    csc = model.predict_full(sp.csc_matrix(X))
    dicts = model.predict_full([{j: float(v) for j, v in enumerate(row) if v}
                                for row in X])
    # The three sparse forms are the same request, bit for bit; the dense
    # one is scored by the dense kernel, which sums in another order.
    for other in (csc, dicts):
        np.testing.assert_array_equal(other.probabilities, csr.probabilities)
    np.testing.assert_allclose(csr.probabilities, dense.probabilities,
                               rtol=1e-5, atol=1e-7)
    # Learning from the sparse form gives the same model as from dense.
    twin = client.create_model(name + "-twin", type="softmax", num_features=6,
                               num_classes=3)
    twin.update(sp.csr_matrix(X), y)
    np.testing.assert_allclose(twin.predict_proba(X), dense.probabilities,
                               rtol=1e-5, atol=1e-7)


def test_named_features_hash_as_documented(client, name):
    """docs/learning.md's worked example: hash_seed 42, D = 1000,
    interaction ua: |user age:3 |ad id123 is {4: 1, 393: 3, 437: 3}."""
    model = client.create_model(name, type="logistic", num_features=1000,
                                interactions=["ua"], hash_seed=42)
    rng = np.random.default_rng(6)
    X = sp.random(200, 1000, density=0.02, format="lil", random_state=7)
    X[:, [4, 393, 437]] = rng.normal(size=(200, 3))
    X = X.tocsr()
    model.update(X, rng.integers(0, 2, size=200))
    named = model.predict_full([{"user": {"age": 3}, "ad": ["id123"]}])
    explicit = model.predict_full(sp.csr_matrix(
        ([1.0, 3.0, 3.0], ([0, 0, 0], [4, 393, 437])), shape=(1, 1000)))
    assert named.values[0] != 0.5  # the weights there are not zero
    np.testing.assert_array_equal(named.values, explicit.values)
    # Loose keys go to the namespace "" (no interaction group); a string
    # value is the feature "key=value".
    loose = model.predict_full([{"city": "paris", "hour": 2}])
    spelled = model.predict_full([{"": {"city=paris": True, "hour": 2}}])
    np.testing.assert_array_equal(loose.values, spelled.values)
    # Learning from named features.
    before = model.info().version
    model.update([{"user": {"age": 3}, "ad": ["id123"]}], [1])
    assert model.info().version == before + 1


def test_weights_and_holdout(client, name):
    X, y = blobs(100, 2, 2, seed=8)
    model = client.create_model(name, type="logistic", num_features=2)
    model.update(X, y, weight=np.linspace(0, 2, 100))
    assert model.info().weight_seen == pytest.approx(100.0, rel=1e-6)
    holdout = np.zeros(100, dtype=bool)
    holdout[::4] = True
    model.update(X, y, holdout=holdout)
    info = model.info()
    assert info.validation.holdout_examples == 25
    assert info.examples_seen == 175  # holdout examples are not trained on
    with pytest.raises(ValueError, match="weight"):
        model.update(X, y, weight=np.ones(99))


def test_pinned_versions_and_min_version(client, name):
    X, y = blobs(50, 3, 3, seed=9)
    model = client.create_model(name, type="softmax", num_features=3,
                                num_classes=3)
    model.update(X, y)
    at_2 = model.predict_proba(X)
    model.update(X, y)
    assert not np.array_equal(model.predict_proba(X), at_2)
    np.testing.assert_array_equal(model.predict_proba(X, version=2), at_2)
    assert model.predict_full(X, version=2).version == 2
    # Read your writes: version 3 exists, version 4 does not yet.
    assert model.predict_full(X, min_version=3).version == 3
    with pytest.raises(lepton.LeptonError) as e:
        model.predict(X, min_version=4, timeout=0.3)
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # After --retained_versions (8) newer versions, version 2 is gone.
    for _ in range(8):
        model.update(X, y)
    with pytest.raises(lepton.LeptonError) as e:
        model.predict(X, version=2)
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_predict_in_batches_is_one_version(client, name):
    X, y = blobs(10, 2, 2, seed=10)
    model = client.create_model(name, type="logistic", num_features=2)
    model.update(X, y)
    whole = model.predict_full(X)
    batched = model.predict_full(X, batch_size=3)
    assert batched.version == whole.version
    np.testing.assert_array_equal(batched.values, whole.values)
    # An error in the third request names the row of X, not of the request.
    X[7, 1] = np.nan
    with pytest.raises(lepton.LeptonError) as e:
        model.predict(X, batch_size=3)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.field == "instances[7].dense[1]"
    assert e.value.message.startswith("instances[7].dense[1]: ")


def test_train_streams_batches(client, name):
    X, y = blobs(1000, 4, 3, seed=11)
    model = client.create_model(name, type="softmax", num_features=4,
                                num_classes=3)
    batches = [(X[i:i + 100], y[i:i + 100]) for i in range(0, 1000, 100)]
    out = io.StringIO()
    result = model.train(batches, progress=out)
    assert result.examples == 1000 and result.requests == 10
    assert result.version == 11 == model.info().version
    assert 0 <= result.progressive_accuracy <= 1
    assert result.progressive_loss > 0
    assert out.getvalue().count("\n") == 1  # not a terminal: the final line
    assert "10/10 batches" in out.getvalue() and "100%" in out.getvalue()

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    terminal = Terminal()
    model.train(batches, progress=terminal)  # redrawn in place, then a newline
    assert terminal.getvalue().startswith("\r")
    assert terminal.getvalue().endswith("\x1b[K\n")
    assert terminal.getvalue().count("\n") == 1
    # A generator (no length), weights and dict batches, no progress bar.
    def generate():
        for i in range(0, 1000, 250):
            yield (X[i:i + 250], y[i:i + 250], np.full(250, 0.5))
        yield {"X": X[:10], "y": y[:10], "holdout": True}
    result = model.train(generate(), progress=False)
    assert result.requests == 5 and result.version == 26
    assert model.info().validation.holdout_examples == 10


def test_train_stops_at_a_refused_batch(client, name):
    X, y = blobs(300, 2, 2, seed=12)
    model = client.create_model(name, type="logistic", num_features=2)
    bad = y[200:300].astype(float)
    bad[17] = 2  # not a logistic label
    batches = [(X[:100], y[:100]), (X[100:200], y[100:200]),
               (X[200:300], bad), (X[:100], y[:100])]
    with pytest.raises(lepton.LeptonError) as e:
        model.train(batches, progress=False)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.method == "StreamUpdate"
    assert e.value.batch == 2 and e.value.examples_applied == 200
    assert e.value.field == "examples[17].label"
    assert "batch 2" in str(e.value)
    assert model.info().version == 3  # the two batches before it, no more

    # A batch the client cannot encode ends the stream the same way.
    def with_a_broken_batch():
        yield (X[:50], y[:50])
        yield (X[:50], y[:49])
        yield (X[:50], y[:50])
    with pytest.raises(ValueError, match="expected") as e:
        model.train(with_a_broken_batch(), progress=False)
    assert any("batch 1" in note for note in e.value.__notes__)
    assert model.info().version == 4


def test_watch(client, name):
    X, y = blobs(20, 2, 2, seed=13)
    model = client.create_model(name, type="logistic", num_features=2)
    with model.watch(min_version_interval_ms=1) as events:
        r = model.update(X, y)
        event = next(events)
        assert event.kind == "VERSION_PUBLISHED"
        assert event.model == name and event.version == r.version
        assert isinstance(event.time, datetime.datetime)
    watch = model.watch()
    model.delete()
    kinds = [e.kind for e in watch]  # ends after MODEL_DELETED
    assert kinds[-1] == "MODEL_DELETED"
    with pytest.raises(lepton.LeptonError) as e:
        client.watch_model(name)
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_export_import_rollback(client, name):
    X, y = blobs(200, 3, 3, seed=14)
    model = client.create_model(name, type="softmax", num_features=3,
                                num_classes=3)
    model.update(X, y)
    at_2 = model.predict_proba(X)
    model.update(X, y)
    exported = model.export()
    assert exported.version == 3 and isinstance(exported.model, bytes)
    old = model.export(version=2)
    assert old.version == 2
    copy = client.import_model(exported, name=name + "-copy")
    assert copy.info().version == 3
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
    with pytest.raises(lepton.LeptonError) as e:
        client.import_model(exported.model, name=name + "-copy")
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS
    # The name in the blob.
    model.delete()
    again = client.import_model(old)
    assert again.name == name and again.info().version == 2
    np.testing.assert_array_equal(again.predict_proba(X), at_2)
    again.update(X, y)
    info = again.rollback(2)
    assert info.version == 4
    np.testing.assert_array_equal(again.predict_proba(X), at_2)


def test_add_classes(client, name):
    X, y = blobs(100, 2, 2, seed=15)
    model = client.create_model(name, type="softmax", num_features=2,
                                num_classes=2)
    model.update(X, y)
    info = model.add_classes(3)
    assert info.spec.num_classes == 3 and info.version == 3
    assert model.predict_proba(X).shape == (100, 3)
    r = model.update(X[:5], [2, 2, 2, 2, 2])
    assert r.version == 4


def test_delayed_labels(client, name):
    X, y = blobs(10, 2, 2, seed=16)
    model = client.create_model(name, type="logistic", num_features=2)
    full = model.predict_full(X, return_prediction_ids=True)
    ids = full.prediction_ids
    assert ids.dtype == np.uint64 and len(set(ids.tolist())) == 10
    assert (ids != 0).all()
    assert model.predict_full(X).prediction_ids is None
    r = model.update(prediction_ids=ids, y=y)
    assert r.examples == 10
    with pytest.raises(lepton.LeptonError) as e:
        model.update(prediction_ids=ids[3:4], y=y[3:4])
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert e.value.field == "examples[0].prediction_id"


def test_update_id_makes_a_retry_safe(client, name):
    X, y = blobs(10, 2, 2, seed=17)
    model = client.create_model(name, type="logistic", num_features=2)
    first = model.update(X, y, update_id="batch-0001")
    retry = model.update(X, y, update_id="batch-0001")
    assert retry.version == first.version == 2
    assert model.info().version == 2
