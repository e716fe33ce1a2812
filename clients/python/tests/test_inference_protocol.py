"""The Open Inference Protocol (KServe V2, inference.GRPCInferenceService)
from Python, with stubs generated at build time from
proto/inference/grpc_predict_v2.proto (the lepton_inference_python target:
top-level grpc_predict_v2_pb2 and grpc_predict_v2_pb2_grpc, as a KServe or
Triton user generates them from the spec's file), against the real
lepton_server on the port of lepton.v1.ModelService.

The requests are what the users' clients send: tritonclient.grpc puts every
input's bytes in raw_input_contents (InferInput.set_data_from_numpy) and
reads outputs from raw_output_contents (InferResult.as_numpy); KServe's
Python client with binary data off, and most hand-written stubs, use
contents.fp32_contents. The answers are compared with lepton.v1's Predict
and Update through the `lepton` package. docs/api.md's snippets of the
protocol run here too.
"""
import os
import pathlib
import re

import grpc
import numpy as np
import pytest

import grpc_predict_v2_pb2 as pb
import grpc_predict_v2_pb2_grpc as pb_grpc

DOC = pathlib.Path(os.environ["LEPTON_SOURCE_DIR"]) / "docs" / "api.md"
NUMPY = {"FP32": np.dtype("<f4"), "INT64": np.dtype("<i8")}


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def blobs(n, seed):
    """n points of 3 separated classes in 4 dimensions, float32."""
    rng = np.random.default_rng(seed)
    centers = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], np.float32)
    y = rng.integers(0, 3, size=n)
    X = centers[y] + rng.normal(scale=0.5, size=(n, 4))
    return X.astype(np.float32), y


def triton_request(model, X, outputs=(), version="", request_id="",
                   label=None, weight=None):
    """What tritonclient.grpc's InferenceServerClient.infer() sends for
    InferInput(name, X.shape, "FP32").set_data_from_numpy(X) per input and
    InferRequestedOutput(name) per output: each tensor's bytes, in order, in
    raw_input_contents."""
    request = pb.ModelInferRequest(model_name=model, model_version=version,
                                   id=request_id)
    tensors = [("features", X)]
    if label is not None:
        tensors.append(("label", np.asarray(label, np.float32)))
    if weight is not None:
        tensors.append(("weight", np.asarray(weight, np.float32)))
    for name, array in tensors:
        request.inputs.add(name=name, datatype="FP32", shape=array.shape)
        request.raw_input_contents.append(array.astype("<f4").tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return request


def kserve_request(model, X, outputs=(), version="", label=None):
    """The same with the values in contents.fp32_contents (KServe's client
    with binary_data=False, or generated stubs filled by hand)."""
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    tensors = [("features", X)]
    if label is not None:
        tensors.append(("label", np.asarray(label, np.float32)))
    for name, array in tensors:
        request.inputs.add(
            name=name, datatype="FP32", shape=array.shape,
            contents=pb.InferTensorContents(fp32_contents=array.ravel()))
    for name in outputs:
        request.outputs.add(name=name)
    return request


def as_numpy(response, name):
    """An output as numpy: from raw_output_contents as tritonclient's
    InferResult.as_numpy reads it, or from contents."""
    for index, output in enumerate(response.outputs):
        if output.name != name:
            continue
        dtype = NUMPY[output.datatype]
        if index < len(response.raw_output_contents):
            values = np.frombuffer(response.raw_output_contents[index], dtype)
        elif output.datatype == "FP32":
            values = np.array(output.contents.fp32_contents, dtype)
        else:
            values = np.array(output.contents.int64_contents, dtype)
        return values.reshape(tuple(output.shape))
    raise KeyError(f"no output {name!r} in the response")


def code_and_details(call):
    with pytest.raises(grpc.RpcError) as failure:
        call()
    return failure.value.code(), failure.value.details()


# --- the generated stubs ----------------------------------------------------


def test_stubs_are_generated_at_build_time():
    """The stubs come from the build directory; none are committed."""
    generated = pathlib.Path(pb.__file__).resolve()
    source = pathlib.Path(os.environ["LEPTON_SOURCE_DIR"]).resolve()
    assert not generated.is_relative_to(source / "proto")
    assert not list((source / "clients").rglob("grpc_predict_v2_pb2*.py"))
    assert pb.DESCRIPTOR.package == "inference"
    # The spec's field numbers, which generated clients put on the wire.
    fields = {f.name: f.number
              for f in pb.ModelInferRequest.DESCRIPTOR.fields}
    assert fields == {"model_name": 1, "model_version": 2, "id": 3,
                      "parameters": 4, "inputs": 5, "outputs": 6,
                      "raw_input_contents": 7}
    contents = {f.name: f.number
                for f in pb.InferTensorContents.DESCRIPTOR.fields}
    assert contents["fp32_contents"] == 6
    assert contents["int64_contents"] == 3


# --- server and model calls ------------------------------------------------


def test_server_live_ready_and_metadata(stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    metadata = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert metadata.name == "lepton"
    assert re.fullmatch(r"\d+\.\d+\.\d+", metadata.version)
    assert list(metadata.extensions) == ["online_learning"]


def test_model_ready_and_metadata(stub, client, name):
    request = pb.ModelReadyRequest(name=name)
    assert not stub.ModelReady(request).ready
    client.create_model(name, type="softmax", num_features=4, num_classes=3)
    assert stub.ModelReady(request).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name=name, version="1")).ready
    assert not stub.ModelReady(
        pb.ModelReadyRequest(name=name, version="2")).ready

    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=name))
    assert metadata.name == name
    assert list(metadata.versions) == ["1"]
    assert metadata.platform == "lepton_softmax"
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("features", "FP32", [-1, 4])]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("probabilities", "FP32", [-1, 3]), ("label", "INT64", [-1]),
        ("value", "FP32", [-1])]
    code, details = code_and_details(
        lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")))
    assert code == grpc.StatusCode.NOT_FOUND
    assert details == 'model "nope" not found'


# --- inference, as Triton's and KServe's clients send it -------------------


def test_triton_raw_request_answers_as_predict(stub, client, name):
    model = client.create_model(name, type="softmax", num_features=4,
                                num_classes=3, learning_rate=0.5)
    X, y = blobs(600, 0)
    assert model.update(X, y).version == 2
    X_test, y_test = blobs(50, 1)

    response = stub.ModelInfer(triton_request(
        name, X_test, outputs=("probabilities", "label"), request_id="r-1"))
    assert response.model_name == name
    assert response.model_version == "2"
    assert response.id == "r-1"
    assert [o.name for o in response.outputs] == ["probabilities", "label"]
    assert len(response.raw_output_contents) == 2
    probabilities = as_numpy(response, "probabilities")
    labels = as_numpy(response, "label")
    assert probabilities.shape == (50, 3) and probabilities.dtype == np.float32
    assert labels.shape == (50,) and labels.dtype == np.int64
    # Bit for bit what lepton.v1's Predict answers.
    np.testing.assert_array_equal(probabilities, model.predict_proba(X_test))
    np.testing.assert_array_equal(labels, model.predict(X_test))
    assert (labels == y_test).mean() > 0.9


def test_kserve_contents_request_answers_in_contents(stub, client, name):
    model = client.create_model(name, type="logistic", num_features=4)
    X, y = blobs(400, 2)
    model.update(X, (y == 0).astype(np.float32))
    X_test, _ = blobs(20, 3)

    response = stub.ModelInfer(kserve_request(name, X_test))
    assert not response.raw_output_contents
    assert [o.name for o in response.outputs] == [
        "probabilities", "label", "value"]
    assert list(response.outputs[0].shape) == [20, 2]
    np.testing.assert_array_equal(as_numpy(response, "probabilities"),
                                  model.predict_proba(X_test))
    np.testing.assert_array_equal(as_numpy(response, "label"),
                                  model.predict(X_test))
    np.testing.assert_array_equal(as_numpy(response, "value"),
                                  model.predict_proba(X_test)[:, 1])


def test_versioned_call(stub, client, name):
    model = client.create_model(name, type="linear", num_features=4)
    X, _ = blobs(100, 4)
    target = X @ np.array([1, -2, 0.5, 3], np.float32)
    for i in range(3):
        model.update(X[i * 30:(i + 1) * 30], target[i * 30:(i + 1) * 30])
    X_test = X[90:]
    answers = {}
    for version in ("2", "3", "4", ""):
        response = stub.ModelInfer(triton_request(name, X_test,
                                                  version=version))
        assert [o.name for o in response.outputs] == ["value"]
        assert response.model_version == (version or "4")
        answers[version] = as_numpy(response, "value")
        np.testing.assert_array_equal(
            answers[version], model.predict(X_test, version=int(version or 0)))
    assert not np.array_equal(answers["2"], answers["4"])
    np.testing.assert_array_equal(answers[""], answers["4"])
    code, details = code_and_details(lambda: stub.ModelInfer(
        triton_request(name, X_test, version="40")))
    assert code == grpc.StatusCode.NOT_FOUND
    assert details.startswith("version 40 ")


# --- the online_learning extension -----------------------------------------


def test_learning_call_learns_as_update_does(stub, client, name):
    """A ModelInfer with a "label" input (and "weight") learns: the same
    model as lepton.v1's Update makes from the same batches."""
    oip = client.create_model(name, type="softmax", num_features=4,
                              num_classes=3)
    twin = client.create_model(name + "-twin", type="softmax",
                               num_features=4, num_classes=3)
    X, y = blobs(300, 5)
    weight = np.linspace(0.5, 2.0, 100).astype(np.float32)
    for i, form in enumerate(("raw", "contents", "raw")):
        batch, labels = X[i * 100:(i + 1) * 100], y[i * 100:(i + 1) * 100]
        if form == "raw":
            request = triton_request(name, batch, label=labels, weight=weight)
        else:
            request = kserve_request(name, batch, label=labels)
        response = stub.ModelInfer(request)
        assert response.model_version == str(i + 2)
        assert [o.name for o in response.outputs] == ["version"]
        np.testing.assert_array_equal(as_numpy(response, "version"), [i + 2])
        assert (len(response.raw_output_contents) == 1) == (form == "raw")
        twin.update(batch, labels, weight if form == "raw" else None)
    assert oip.info().version == 4
    assert oip.info().examples_seen == 300
    X_test, y_test = blobs(100, 6)
    np.testing.assert_array_equal(oip.predict_proba(X_test),
                                  twin.predict_proba(X_test))
    assert (oip.predict(X_test) == y_test).mean() > 0.9


def test_learning_errors_apply_nothing(stub, client, name):
    client.create_model(name, type="logistic", num_features=4)
    X, _ = blobs(5, 7)
    code, details = code_and_details(lambda: stub.ModelInfer(
        triton_request(name, X, label=[0, 1, 2, 0, 1])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "raw_input_contents[1][2]: must be 0 or 1, got 2"
    code, details = code_and_details(lambda: stub.ModelInfer(
        triton_request(name, X, label=[0, 1, 1])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("inputs[1].shape[0]: 3 labels for the 5 rows")
    assert client.model(name).info().version == 1


def test_errors_name_the_field(stub, client, name):
    client.create_model(name, type="softmax", num_features=4, num_classes=3)
    X, _ = blobs(3, 8)
    request = triton_request(name, X)
    request.inputs[0].shape[:] = [12]
    code, details = code_and_details(lambda: stub.ModelInfer(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == ("inputs[0].shape: must be [n, num_features], "
                       "got [12]")
    code, details = code_and_details(lambda: stub.ModelInfer(
        kserve_request(name, X[:, :3])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == ("inputs[0].shape[1]: rows of 3 features, "
                       "the model has num_features 4")
    bad = X.copy()
    bad[1, 3] = np.nan
    code, details = code_and_details(lambda: stub.ModelInfer(
        kserve_request(name, bad)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == ("inputs[0].contents.fp32_contents[7]: not finite "
                       "(row 1, column 3)")
    code, details = code_and_details(lambda: stub.ModelInfer(
        triton_request(name, X, outputs=("scores",))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith('outputs[0].name: the model has no output '
                              '"scores"')
    code, _ = code_and_details(lambda: stub.ModelInfer(
        triton_request("nope", X)))
    assert code == grpc.StatusCode.NOT_FOUND


# --- docs/api.md ------------------------------------------------------------


def test_api_md_snippets_run(server, client, capsys):
    """docs/api.md's Python snippets (the Open Inference Protocol's), in
    order in one namespace, against this server."""
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2, "docs/api.md's snippets changed: update this test"
    client.create_model("fm-oip", type="softmax", num_features=784,
                        num_classes=10)
    namespace = {"__name__": "docs"}
    for i, code in enumerate(blocks):
        code = code.replace("localhost:50051", server.target)
        exec(compile(code, f"{DOC}:python-block-{i}", "exec"), namespace)
    out = capsys.readouterr().out
    assert out == "1 [256, 10] [256]\n2\n2\n", out
    info = client.model("fm-oip").info()
    assert info.version == 2 and info.examples_seen == 256
    # Learned toward class 3.
    assert (client.model("fm-oip").predict(namespace["X"]) == 3).all()
    namespace["channel"].close()
