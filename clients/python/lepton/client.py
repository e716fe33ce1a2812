"""Client and Model: every RPC of lepton.v1.ModelService as a Python method.

  import lepton
  client = lepton.Client("localhost:50051")
  fm = client.create_model("fm", type="softmax", num_features=784,
                           num_classes=10, optimizer="sgd", learning_rate=0.1)
  fm.update(X, y)                      # one Update: a new version
  labels = fm.predict(X_test)          # class indices (numpy)
  proba = fm.predict_proba(X_test)     # n x K probabilities

Arrays go in and come out as numpy; answers that describe something
(ModelInfo, UpdateResponse, ModelEvent, ...) come back as `Record`s whose
attributes are the proto's fields (lepton._records). Every failure raises
LeptonError with the gRPC code and, when the server names one, the field.

Thread safety: a Client and its Models may be used from several threads at
once (gRPC channels are thread-safe); a Watch is read by one thread.
"""
import collections
import time

import grpc
import numpy as np

from lepton import _encode
from lepton._progress import Progress
from lepton._records import Record, enum_value, fill, read_pem, to_record
from lepton._stubs import SERVICE, pb
from lepton.errors import LeptonError

_DEFAULT = object()  # the client's timeout
_OPTIMIZER_SETTINGS = frozenset(pb.Optimizer.DESCRIPTOR.fields_by_name) - {"kind"}
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING",
                  3: "SERVICE_UNKNOWN"}


def _serialize(request):
    return request if isinstance(request, bytes) else request.SerializeToString()


def _identity(data):
    return data


def build_spec(type=None, num_features=None, num_classes=None, optimizer=None,
               **settings):
    """A ModelSpec from keyword settings.

    type: "softmax", "logistic", "linear" (or the enum's full name).
    optimizer: "sgd", "adagrad", "ftrl", "adam", or a dict of Optimizer
    fields. The Optimizer's fields (learning_rate, power_t, epsilon,
    initial_accumulator, beta, l1, beta1, beta2) may also be given flat.
    Any other ModelSpec field by its proto name: l2, minibatch_size,
    interactions (a list or "ua,uu"), hash_seed, max_gradient_norm,
    max_step, drift (a dict of DriftConfig fields), guardrail (a dict of
    GuardrailConfig fields). Enum values by name, in any case, with a
    unique part of the name enough ("challenger", "reject"). None means the
    server's default. TypeError for an unknown setting.
    """
    spec = pb.ModelSpec()
    if type is not None:
        spec.type = enum_value(pb.ModelSpec.DESCRIPTOR.fields_by_name[
            "type"].enum_type, type, "spec.type")
    if num_features is not None:
        spec.num_features = int(num_features)
    if num_classes is not None:
        spec.num_classes = int(num_classes)
    flat = {k: settings.pop(k) for k in list(settings)
            if k in _OPTIMIZER_SETTINGS}
    fill(spec, settings, "spec.")
    if isinstance(optimizer, pb.Optimizer):
        spec.optimizer.CopyFrom(optimizer)
    elif isinstance(optimizer, dict):
        fill(spec.optimizer, optimizer, "spec.optimizer.")
    elif optimizer is not None:
        spec.optimizer.kind = enum_value(
            pb.Optimizer.DESCRIPTOR.fields_by_name["kind"].enum_type,
            optimizer, "spec.optimizer.kind")
    fill(spec.optimizer, flat, "spec.optimizer.")
    return spec


class PredictResult:
    """The answer of one predict: numpy arrays of n, all by one version.

    version:        the version that produced every prediction.
    values:         float32: linear, the predicted value; logistic, P(y=1);
                    softmax, the probability of the predicted class.
    labels:         int64: classifiers, the predicted class (logistic: 1 when
                    P(y=1) >= 0.5); 0 for linear.
    probabilities:  float32 n x K for softmax; None otherwise.
    prediction_ids: uint64, with return_prediction_ids=True; else None.
    """

    def __init__(self, version, values, labels, probabilities, prediction_ids):
        self.version = version
        self.values = values
        self.labels = labels
        self.probabilities = probabilities
        self.prediction_ids = prediction_ids

    def __len__(self):
        return len(self.values)

    def __repr__(self):
        return (f"PredictResult(version={self.version}, n={len(self)}, "
                f"probabilities={'yes' if self.probabilities is not None else 'no'})")

    @classmethod
    def from_responses(cls, responses, with_ids):
        predictions = [p for r in responses for p in r.predictions]
        n = len(predictions)
        values = np.fromiter((p.value for p in predictions), np.float32, n)
        labels = np.fromiter((p.label for p in predictions), np.int64, n)
        probabilities = None
        if n and len(predictions[0].probabilities):
            probabilities = np.array([p.probabilities for p in predictions],
                                     dtype=np.float32)
        ids = None
        if with_ids:
            ids = np.fromiter((p.prediction_id for p in predictions),
                              np.uint64, n)
        version = responses[0].version if responses else 0
        return cls(version, values, labels, probabilities, ids)


class _RunTotals:
    """A stream's progressive validation from its responses: each batch's
    loss (and accuracy) before learning, weighted by the examples it trained
    on (holdout examples are neither trained on nor scored), as
    lepton_client train counts them."""

    def __init__(self):
        self.examples = 0
        self.holdout = 0
        self.requests = 0
        self.loss_sum = 0.0
        self.accuracy_sum = 0.0
        self.has_accuracy = False
        self.version = 0
        self.quarantined = 0

    def add(self, response, holdout):
        self.examples += response.examples
        self.holdout += holdout
        self.requests += 1
        trained = response.examples - holdout
        self.loss_sum += response.loss_before * trained
        if response.HasField("accuracy_before"):
            self.has_accuracy = True
            self.accuracy_sum += response.accuracy_before * trained
        self.version = response.version
        self.quarantined += bool(response.quarantined)

    def trained(self):
        return self.examples - self.holdout

    def loss(self):
        return self.loss_sum / self.trained() if self.trained() > 0 else 0.0

    def accuracy(self):
        return self.accuracy_sum / self.trained() if self.trained() > 0 else 0.0


class Watch:
    """WatchModel as an iterator of event Records (kind, model, version,
    example, detail, time, skipped_versions, dropped_events). It ends when
    the model is deleted (after its MODEL_DELETED event) or after cancel();
    an error ends it with LeptonError. Use it in a `with` block, or call
    cancel(), to end the call."""

    def __init__(self, call):
        self._call = call
        self._cancelled = False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return to_record(next(self._call))
        except grpc.RpcError as error:
            if self._cancelled and error.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise LeptonError.from_rpc_error(
                error, "WatchModel",
                SERVICE.methods_by_name["WatchModel"].input_type) from None

    def cancel(self):
        self._cancelled = True
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()
        return False


class Client:
    """A connection to a Lepton server.

    target:  "host:port", or any gRPC target ("ipv4:10.0.0.1:50051,
             10.0.0.2:50051" with options=[("grpc.lb_policy_name",
             "round_robin")] spreads calls over several nodes).
    token:   a bearer token, sent as "authorization: Bearer <token>" with
             every call; token_file: the same, read from the file's first
             line.
    tls:     None or False: plaintext. True: TLS, verifying the server with
             the system's CAs. A file name, PEM bytes or PEM text: TLS with
             that CA. A grpc.ChannelCredentials: used as is.
    tls_cert, tls_key: a client certificate and its key (file names or PEM)
             for mutual TLS; they turn TLS on.
    tls_server_name: the name expected in the server's certificate, when the
             target uses another (an IP address, a tunnel).
    timeout: seconds each call may take (None: no deadline); train() and
             watch() have no deadline unless given one.
    """

    def __init__(self, target="localhost:50051", token=None, tls=None, *,
                 tls_cert=None, tls_key=None, tls_server_name=None,
                 token_file=None, timeout=30.0, max_message_bytes=64 << 20,
                 options=()):
        if token is not None and token_file is not None:
            raise ValueError("give token or token_file, not both")
        if token_file is not None:
            with open(token_file, encoding="utf-8") as f:
                token = f.readline().strip()
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key: give both or neither")
        credentials = None
        if isinstance(tls, grpc.ChannelCredentials):
            credentials = tls
        elif tls or tls_cert is not None:
            if tls is False:
                raise ValueError("tls=False with a client certificate")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=None if tls in (None, True)
                else read_pem(tls, "tls"),
                private_key=read_pem(tls_key, "tls_key"),
                certificate_chain=read_pem(tls_cert, "tls_cert"))
        channel_options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)]
        if tls_server_name:
            channel_options.append(
                ("grpc.ssl_target_name_override", tls_server_name))
        channel_options.extend(options)
        self.target = target
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = (grpc.secure_channel(target, credentials, channel_options)
                         if credentials is not None
                         else grpc.insecure_channel(target, channel_options))
        self._calls = {}
        for method in SERVICE.methods:
            path = f"/{SERVICE.full_name}/{method.name}"
            response = getattr(pb, method.output_type.name).FromString
            if method.client_streaming and method.server_streaming:
                make = self._channel.stream_stream
            elif method.server_streaming:
                make = self._channel.unary_stream
            else:
                make = self._channel.unary_unary
            self._calls[method.name] = make(path, request_serializer=_serialize,
                                            response_deserializer=response)
        self._health = self._channel.unary_unary(
            _HEALTH_CHECK, request_serializer=_identity,
            response_deserializer=_identity)

    # --- plumbing -------------------------------------------------------

    def _deadline(self, timeout):
        return self.timeout if timeout is _DEFAULT else timeout

    def _unary(self, method, request, timeout=_DEFAULT):
        try:
            return self._calls[method](request, timeout=self._deadline(timeout),
                                       metadata=self._metadata)
        except grpc.RpcError as error:
            raise LeptonError.from_rpc_error(
                error, method, SERVICE.methods_by_name[method].input_type) from None

    def close(self):
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"lepton.Client({self.target!r})"

    # --- health ---------------------------------------------------------

    def health(self, service="", timeout=_DEFAULT):
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... ("" is the
        whole server; "lepton.v1.ModelService" the service). Needs no
        token."""
        name = service.encode()
        request = (b"\x0a" + _encode._varint(len(name)) + name) if name else b""
        try:
            data = self._health(request, timeout=self._deadline(timeout))
        except grpc.RpcError as error:
            raise LeptonError.from_rpc_error(error, "Health.Check") from None
        status, shift, i = 0, 0, 1
        if data[:1] == b"\x08":
            while i < len(data):
                status |= (data[i] & 0x7F) << shift
                shift += 7
                i += 1
                if not data[i - 1] & 0x80:
                    break
        return _HEALTH_STATUS.get(status, str(status))

    def wait_ready(self, timeout=10.0):
        """Waits until the server answers SERVING; LeptonError
        (DEADLINE_EXCEEDED or the last error) after `timeout` seconds."""
        end = time.monotonic() + timeout
        last = None
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise last or LeptonError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                          f"{self.target} not SERVING after "
                                          f"{timeout} s", "Health.Check")
            try:
                grpc.channel_ready_future(self._channel).result(timeout=left)
                if self.health(timeout=max(left, 0.1)) == "SERVING":
                    return
            except grpc.FutureTimeoutError:
                pass
            except LeptonError as error:
                last = error
            time.sleep(0.05)

    # --- models ---------------------------------------------------------

    def model(self, name):
        """A handle on the model `name` (no call is made)."""
        return Model(self, name)

    def create_model(self, name, type, num_features, num_classes=None, *,
                     timeout=_DEFAULT, **spec):
        """CreateModel: a model at version 1 with all weights zero; returns
        its Model handle. `spec`: any other setting (see build_spec), e.g.
        optimizer="ftrl", learning_rate=0.1, l1=1.0, minibatch_size=1,
        interactions=["ua"], drift={"policy": "alert"},
        guardrail={"policy": "reject", "holdout_capacity": 500}."""
        request = pb.CreateModelRequest(
            name=name, spec=build_spec(type=type, num_features=num_features,
                                       num_classes=num_classes, **spec))
        info = to_record(self._unary("CreateModel", request, timeout))
        return Model(self, name, info)

    def get_model(self, name, timeout=_DEFAULT):
        """GetModel: the model's ModelInfo as a Record."""
        return to_record(self._unary(
            "GetModel", pb.GetModelRequest(name=name), timeout))

    def list_models(self, timeout=_DEFAULT):
        """ListModels: every model's ModelInfo, ordered by name."""
        response = self._unary("ListModels", pb.ListModelsRequest(), timeout)
        return [to_record(m) for m in response.models]

    def delete_model(self, name, timeout=_DEFAULT):
        """DeleteModel."""
        self._unary("DeleteModel", pb.DeleteModelRequest(name=name), timeout)

    def predict(self, model, X, *, version=0, min_version=0,
                return_prediction_ids=False, batch_size=4096,
                timeout=_DEFAULT):
        """Predict: a PredictResult for the rows of X (a dense 2-D array, a
        SciPy sparse matrix or a list of dicts of named features).

        version: pin a retained version (0: the newest). min_version: answer
        only once the model has reached that version (read your writes;
        waits up to the timeout). X is sent in requests of at most
        batch_size rows; the requests after the first pin the version the
        first one was answered by, so that every row is scored by one
        version (NOT_FOUND if that version is evicted meanwhile, after
        --retained_versions newer updates).
        """
        instances = _encode.Instances(X)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        responses = []
        pinned = int(version)
        for start in range(0, max(len(instances), 1), batch_size):
            part = instances.slice(start, start + batch_size)
            head = pb.PredictRequest(
                model=model, version=pinned,
                return_prediction_ids=return_prediction_ids,
                min_version=int(min_version) if not responses else 0)
            try:
                response = self._unary(
                    "Predict", head.SerializeToString() + part.instances_bytes(),
                    timeout)
            except LeptonError as error:
                error._shift_index("instances", start)
                raise
            pinned = pinned or response.version
            responses.append(response)
        return PredictResult.from_responses(responses, return_prediction_ids)

    @staticmethod
    def _examples(X, y, weight, holdout, prediction_ids):
        """(bytes of UpdateRequest.examples, n, holdout examples)."""
        if y is None:
            raise ValueError("y (the labels) is required")
        if prediction_ids is not None:
            if X is not None:
                raise ValueError("give X or prediction_ids, not both")
            ids = np.asarray(prediction_ids, dtype=np.uint64).ravel()
            n = len(ids)
        else:
            if X is None:
                raise ValueError("X is required (or prediction_ids)")
            instances = _encode.Instances(X)
            n = len(instances)
        labels = _encode.per_example(y, n, "y", np.float32)
        weights = _encode.per_example(weight, n, "weight", np.float32)
        flags = _encode.per_example(holdout, n, "holdout", bool)
        held = int(flags.sum()) if flags is not None else 0
        if prediction_ids is not None:
            return (_encode.prediction_examples_bytes(ids, labels, weights,
                                                      flags), n, held)
        return instances.examples_bytes(labels, weights, flags), n, held

    def update(self, model, X=None, y=None, weight=None, *, holdout=None,
               prediction_ids=None, learning_rate=0.0, epochs=0,
               update_id="", timeout=_DEFAULT):
        """Update: learns from the examples (X, y), all or nothing, in one
        request, and returns the UpdateResponse as a Record (version,
        examples, loss_before, accuracy_before, quarantined, ...).

        y: labels (class indices for softmax, 0/1 for logistic, values for
        linear). weight: importance weights (default 1). holdout: True (or
        one flag per example) to put examples in the model's holdout set.
        prediction_ids: instead of X, label earlier predictions by id
        (delayed labels). learning_rate, epochs: this update only.
        update_id: makes a retry safe (the retry returns the first answer).
        """
        body, _, _ = self._examples(X, y, weight, holdout, prediction_ids)
        head = pb.UpdateRequest(model=model, learning_rate=learning_rate,
                                epochs=epochs, update_id=update_id)
        return to_record(self._unary(
            "Update", head.SerializeToString() + body, timeout))

    def stream_update(self, model, batches, *, progress=False, total=None,
                      learning_rate=0.0, epochs=0, timeout=None):
        """StreamUpdate: each batch of `batches` as one request of one call,
        applied in order, one version each. A batch is a tuple (X, y) or
        (X, y, weight), or a dict of update()'s arguments (X, y, weight,
        holdout, prediction_ids). Batches are read and sent while earlier
        ones are being applied.

        Returns a Record: examples, requests, seconds, examples_per_second,
        version (the model's after the last batch), progressive_loss and
        progressive_accuracy (this run's, weighted by trained examples;
        accuracy None for linear models), quarantined (batches a QUARANTINE
        guardrail held back).

        A refused batch ends the stream: LeptonError with .batch (its index)
        and .examples_applied; every batch before it was applied. A batch
        that cannot be encoded (a ValueError, say) also ends the stream
        after the batches before it were applied, and is raised with a note
        naming the batch.

        progress: True draws a progress bar on stderr (or give a file);
        total: the number of batches, for the bar (len(batches) if it has
        one).
        """
        head = pb.UpdateRequest(model=model, learning_rate=learning_rate,
                                epochs=epochs).SerializeToString()
        holdout_sent = collections.deque()
        failed = []
        totals = _RunTotals()

        def requests():
            iterator = iter(batches)
            index = 0
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
                except BaseException as error:  # the caller's iterable
                    failed.append((index, error))
                    return
                try:
                    if isinstance(batch, dict):
                        args = dict(batch)
                        body, _, held = self._examples(
                            args.pop("X", None), args.pop("y", None),
                            args.pop("weight", None), args.pop("holdout", None),
                            args.pop("prediction_ids", None))
                        if args:
                            raise TypeError(f"unknown batch keys {sorted(args)}")
                    else:
                        if not isinstance(batch, tuple) or len(batch) not in (2, 3):
                            raise TypeError("a batch is (X, y), (X, y, weight) "
                                            "or a dict")
                        body, _, held = self._examples(
                            batch[0], batch[1],
                            batch[2] if len(batch) == 3 else None, None, None)
                except BaseException as error:
                    failed.append((index, error))
                    return
                holdout_sent.append(held)
                index += 1
                yield head + body

        if total is None and hasattr(batches, "__len__"):
            total = len(batches)
        bar = None
        if progress:
            bar = Progress(f"train {model}", total,
                           None if progress is True else progress)
        start = time.monotonic()
        call = self._calls["StreamUpdate"](requests(), timeout=timeout,
                                           metadata=self._metadata)
        try:
            for response in call:
                totals.add(response, holdout_sent.popleft())
                if bar:
                    bar.update(totals)
        except grpc.RpcError as rpc_error:
            error = LeptonError.from_rpc_error(
                rpc_error, "StreamUpdate",
                SERVICE.methods_by_name["StreamUpdate"].input_type)
            error.batch = totals.requests
            error.examples_applied = totals.examples
            if bar:
                bar.update(totals, final=True)
            raise error from None
        finally:
            call.cancel()  # a no-op once the call has finished
        seconds = time.monotonic() - start
        if bar:
            bar.update(totals, final=True)
        if failed:
            index, error = failed[0]
            error.add_note(
                f"lepton: batch {index} of the stream to model {model!r}; "
                f"the {totals.requests} batches before it "
                f"({totals.examples} examples) were applied")
            raise error
        return Record(
            examples=totals.examples, requests=totals.requests,
            seconds=seconds,
            examples_per_second=totals.examples / seconds if seconds else 0.0,
            version=totals.version, progressive_loss=totals.loss(),
            progressive_accuracy=(totals.accuracy() if totals.has_accuracy
                                  else None),
            quarantined=totals.quarantined)

    def rollback(self, model, version, timeout=_DEFAULT):
        """Rollback: publishes the state of `version` as the next version;
        returns the ModelInfo."""
        return to_record(self._unary(
            "Rollback", pb.RollbackRequest(name=model, version=version),
            timeout))

    def add_classes(self, model, num_classes, timeout=_DEFAULT):
        """AddClasses: grows a softmax model to num_classes classes in all;
        returns the ModelInfo."""
        return to_record(self._unary(
            "AddClasses",
            pb.AddClassesRequest(name=model, num_classes=num_classes), timeout))

    def export_model(self, model, version=0, timeout=_DEFAULT):
        """ExportModel: a Record with .model (the blob, bytes) and .version."""
        return to_record(self._unary(
            "ExportModel", pb.ExportModelRequest(name=model, version=version),
            timeout))

    def import_model(self, blob, name="", timeout=_DEFAULT):
        """ImportModel: a new model from an export (its bytes, or the Record
        export_model returned), named `name` (empty: the name in the blob),
        at the blob's version. Returns its Model handle."""
        if isinstance(blob, Record):
            blob = blob.model
        info = to_record(self._unary(
            "ImportModel", pb.ImportModelRequest(name=name, model=bytes(blob)),
            timeout))
        return Model(self, info.name, info)

    def watch_model(self, model, min_version_interval_ms=0, timeout=None):
        """WatchModel: a Watch, an iterator of the model's events from now
        on. Returns once the server has subscribed it, so that every event
        after the return is seen; LeptonError at once for a model that does
        not exist."""
        call = self._calls["WatchModel"](
            pb.WatchModelRequest(
                name=model, min_version_interval_ms=min_version_interval_ms),
            timeout=timeout, metadata=self._metadata)
        try:
            call.initial_metadata()  # sent once subscribed (or at the end)
            if call.done() and call.code() != grpc.StatusCode.OK:
                raise LeptonError.from_rpc_error(
                    call, "WatchModel",
                    SERVICE.methods_by_name["WatchModel"].input_type)
        except grpc.RpcError as error:
            raise LeptonError.from_rpc_error(error, "WatchModel") from None
        return Watch(call)


class Model:
    """A handle on one model of a server: its name and client. The model's
    type is remembered from create_model, import_model or the first call
    that needs it (predict, predict_proba).
    """

    def __init__(self, client, name, info=None):
        self.client = client
        self.name = name
        self._type = None
        if info is not None:
            self._remember(info)

    def __repr__(self):
        return f"lepton.Model({self.name!r}, type={self._type})"

    def _remember(self, info):
        self._type = info.spec.type
        return info

    @property
    def type(self):
        """"SOFTMAX_REGRESSION", "LOGISTIC_REGRESSION" or
        "LINEAR_REGRESSION" (one GetModel the first time)."""
        if self._type is None:
            self.info()
        return self._type

    def info(self, timeout=_DEFAULT):
        """GetModel: the ModelInfo Record (version, spec, examples_seen,
        progressive_loss, retained_versions, drift, validation, ...)."""
        return self._remember(self.client.get_model(self.name, timeout))

    def predict_full(self, X, **options):
        """Client.predict for this model: a PredictResult."""
        return self.client.predict(self.name, X, **options)

    def predict(self, X, **options):
        """Classifiers: the predicted class indices (int64); linear: the
        predicted values (float32). Options as Client.predict (version,
        min_version, batch_size, timeout)."""
        result = self.predict_full(X, **options)
        if self.type == "LINEAR_REGRESSION":
            return result.values
        return result.labels

    def predict_proba(self, X, **options):
        """The class probabilities, float32 n x K (logistic: two columns,
        P(0) and P(1)). ValueError for a linear model."""
        result = self.predict_full(X, **options)
        if result.probabilities is not None:
            return result.probabilities
        if self.type == "LOGISTIC_REGRESSION":
            return np.column_stack([1 - result.values, result.values])
        raise ValueError(f"model {self.name!r} is {self.type}: it predicts "
                         "values, not probabilities")

    def update(self, X=None, y=None, weight=None, **options):
        """Client.update for this model."""
        return self.client.update(self.name, X, y, weight, **options)

    def train(self, batches, progress=True, **options):
        """Client.stream_update for this model, with a progress bar on
        stderr by default."""
        return self.client.stream_update(self.name, batches, progress=progress,
                                         **options)

    def watch(self, min_version_interval_ms=0, timeout=None):
        """Client.watch_model for this model."""
        return self.client.watch_model(self.name, min_version_interval_ms,
                                       timeout)

    def export(self, version=0, timeout=_DEFAULT):
        """Client.export_model: a Record with .model (bytes) and .version."""
        return self.client.export_model(self.name, version, timeout)

    def rollback(self, version, timeout=_DEFAULT):
        """Client.rollback: the ModelInfo after it."""
        return self._remember(self.client.rollback(self.name, version, timeout))

    def add_classes(self, num_classes, timeout=_DEFAULT):
        """Client.add_classes: the ModelInfo after it."""
        return self._remember(
            self.client.add_classes(self.name, num_classes, timeout))

    def delete(self, timeout=_DEFAULT):
        """Client.delete_model."""
        self.client.delete_model(self.name, timeout)
