"""Instances and examples to request bytes.

X is one of:
  - a dense 2-D array-like of numbers (n rows of exactly num_features);
  - a SciPy sparse matrix (any format; converted to CSR, duplicates summed);
  - a sequence of dicts, one per instance (see `_dict_features`).

Requests are sent as bytes: a protobuf message may be written as the
concatenation of its fields' encodings, so the scalar fields of a request
are serialized by the generated class and the repeated instances or examples
are appended. Dense rows are encoded with numpy in one pass (every row has
the same length), which is much faster than building messages one float at
a time; sparse and named rows go through the generated classes.
"""
import numbers
from collections.abc import Mapping

import numpy as np

from lepton._stubs import pb

_REPEATED_FIELD_2 = 0x12  # instances (PredictRequest), examples (UpdateRequest)


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _is_scipy_sparse(x):
    return type(x).__module__.startswith("scipy.sparse")


def _is_dict_rows(x):
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and all(isinstance(row, Mapping) for row in x))


def _feature_value(name, value):
    """(name, value or None) of one named feature; None to leave it out."""
    if value is None or value is False:
        return None
    if value is True:
        return (name, None)
    if isinstance(value, str):
        return (f"{name}={value}", None)
    if isinstance(value, numbers.Real):
        return (name, float(value))
    raise TypeError(f"feature {name!r}: expected a number, a string or a "
                    f"bool, got {type(value).__name__}")


def _namespace(name, features):
    ns = pb.Namespace(name=name)
    if isinstance(features, Mapping):
        items = features.items()
    elif isinstance(features, str):
        items = [(features, True)]
    else:
        items = [(f, True) for f in features]
    for fname, fvalue in items:
        if not isinstance(fname, str):
            raise TypeError(f"namespace {name!r}: feature names must be "
                            f"strings, got {fname!r}")
        named = _feature_value(fname, fvalue)
        if named is None:
            continue
        feature = ns.features.add(name=named[0])
        if named[1] is not None:
            feature.value = named[1]
    return ns


def _dict_features(row):
    """Features of one dict:
      {"user": {"age": 3, "city": "paris"},  # namespace "user": age:3, city=paris
       "ad": ["id123", "top"],                # namespace "ad": id123, top (value 1)
       "hour": 13, "weekend": True,           # namespace "" (no interaction group)
       17: 0.5}                               # explicit sparse index 17
    A string value v of feature k is the feature "k=v" with value 1; True is
    the feature with value 1; False and None leave it out.
    """
    features = pb.Features()
    loose = {}
    indices = []
    for key, value in row.items():
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            indices.append((int(key), float(value)))
        elif not isinstance(key, str):
            raise TypeError(f"dict keys must be strings (namespaces or "
                            f"features) or ints (indices), got {key!r}")
        elif isinstance(value, (Mapping, list, tuple, set, frozenset)):
            features.namespaces.append(_namespace(key, value))
        else:
            loose[key] = value
    if loose:
        features.namespaces.append(_namespace("", loose))
    if indices:
        indices.sort()
        features.indices.extend(i for i, _ in indices)
        features.values.extend(v for _, v in indices)
    return features


class Instances:
    """n instances of one of the accepted forms; sliceable into batches."""

    def __init__(self, x):
        self.dense = None
        self.csr = None
        self.rows = None
        if _is_scipy_sparse(x):
            csr = x.tocsr(copy=True)
            csr.sum_duplicates()
            self.csr = csr
            self.n = csr.shape[0]
        elif _is_dict_rows(x):
            self.rows = list(x)
            self.n = len(self.rows)
        else:
            dense = np.asarray(x)
            if dense.ndim != 2:
                raise ValueError(
                    f"X must be 2-D (n instances x num_features), got shape "
                    f"{dense.shape}; one instance is X.reshape(1, -1)")
            if dense.dtype.kind not in "biuf":
                raise TypeError(f"X must hold numbers, got dtype {dense.dtype}")
            self.dense = np.ascontiguousarray(dense, dtype="<f4")
            self.n = dense.shape[0]

    def __len__(self):
        return self.n

    def slice(self, start, stop):
        part = Instances.__new__(Instances)
        part.dense = None if self.dense is None else self.dense[start:stop]
        part.csr = None if self.csr is None else self.csr[start:stop]
        part.rows = None if self.rows is None else self.rows[start:stop]
        part.n = min(stop, self.n) - start
        return part

    def _features(self, i):
        if self.rows is not None:
            return _dict_features(self.rows[i])
        lo, hi = self.csr.indptr[i], self.csr.indptr[i + 1]
        return pb.Features(indices=self.csr.indices[lo:hi].tolist(),
                           values=self.csr.data[lo:hi].astype(
                               np.float32).tolist())

    def _dense_rows(self, prefix_len):
        """A (n, prefix_len + 2 + len + 4D) uint8 array: room for a prefix of
        prefix_len bytes, then each row's Features message (field 1 `dense`,
        packed floats) with its own tag and length, as an embedded field."""
        d = self.dense.shape[1]
        feature_head = b"\x0a" + _varint(4 * d)
        rows = np.empty((self.n, prefix_len + len(feature_head) + 4 * d),
                        dtype=np.uint8)
        rows[:, prefix_len:prefix_len + len(feature_head)] = np.frombuffer(
            feature_head, dtype=np.uint8)
        rows[:, prefix_len + len(feature_head):] = self.dense.view(
            np.uint8).reshape(self.n, 4 * d)
        return rows, len(feature_head) + 4 * d

    def instances_bytes(self):
        """The encoding of PredictRequest.instances (field 2)."""
        if self.dense is None:
            request = pb.PredictRequest(
                instances=[self._features(i) for i in range(self.n)])
            return request.SerializeToString()
        d = self.dense.shape[1]
        feature_len = len(b"\x0a" + _varint(4 * d)) + 4 * d
        head = bytes([_REPEATED_FIELD_2]) + _varint(feature_len)
        rows, _ = self._dense_rows(len(head))
        rows[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
        return rows.tobytes()

    def examples_bytes(self, labels, weights=None, holdout=None):
        """The encoding of UpdateRequest.examples (field 2): the instances
        with their labels, and importance weights and holdout flags when
        given (arrays of n)."""
        if self.dense is None:
            examples = []
            for i in range(self.n):
                example = pb.Example(features=self._features(i),
                                     label=labels[i])
                if weights is not None:
                    example.weight = weights[i]
                if holdout is not None:
                    example.holdout = bool(holdout[i])
                examples.append(example)
            return pb.UpdateRequest(examples=examples).SerializeToString()
        d = self.dense.shape[1]
        feature_len = len(b"\x0a" + _varint(4 * d)) + 4 * d
        # Example: features (field 1), label (2, fixed32), weight (3,
        # fixed32), holdout (5, varint).
        features_head = b"\x0a" + _varint(feature_len)
        tail = 5 + (5 if weights is not None else 0) + \
            (2 if holdout is not None else 0)
        example_len = len(features_head) + feature_len + tail
        head = bytes([_REPEATED_FIELD_2]) + _varint(example_len) + features_head
        body, _ = self._dense_rows(len(head))
        rows = np.empty((self.n, body.shape[1] + tail), dtype=np.uint8)
        rows[:, :body.shape[1]] = body
        rows[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
        at = body.shape[1]
        rows[:, at] = 0x15
        rows[:, at + 1:at + 5] = np.ascontiguousarray(
            labels, dtype="<f4").view(np.uint8).reshape(self.n, 4)
        at += 5
        if weights is not None:
            rows[:, at] = 0x1D
            rows[:, at + 1:at + 5] = np.ascontiguousarray(
                weights, dtype="<f4").view(np.uint8).reshape(self.n, 4)
            at += 5
        if holdout is not None:
            rows[:, at] = 0x28
            rows[:, at + 1] = np.asarray(holdout, dtype=bool).astype(np.uint8)
        return rows.tobytes()


def per_example(values, n, name, dtype):
    """`values` as an array of n (a scalar is repeated), or None."""
    if values is None:
        return None
    array = np.asarray(values, dtype=dtype)
    if array.ndim == 0:
        return np.full(n, array, dtype=dtype)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(f"{name} has shape {np.shape(values)}, expected "
                         f"({n},): one per example")
    return array


def prediction_examples_bytes(ids, labels, weights=None, holdout=None):
    """UpdateRequest.examples labelling earlier predictions by id."""
    examples = []
    for i in range(len(ids)):
        example = pb.Example(prediction_id=int(ids[i]), label=labels[i])
        if weights is not None:
            example.weight = weights[i]
        if holdout is not None:
            example.holdout = bool(holdout[i])
        examples.append(example)
    return pb.UpdateRequest(examples=examples).SerializeToString()
