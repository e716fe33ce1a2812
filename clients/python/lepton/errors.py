"""LeptonError: a call the server (or gRPC) refused.

The server's error contract (docs/api.md#errors, the comment at the top of
proto/lepton/v1/lepton.proto): every error is a gRPC status code, and when
a field of the request is at fault the message starts with its 0-based path,
"examples[7].features.dense[0]: not finite". `LeptonError.field` is that
path, or None. A prefix counts as a path only if every name in it is a field
of the request message (looked up in the generated descriptors), so that
messages such as 'model "x" not found' or "guardrail: this update would ..."
carry no field.
"""
import re

import grpc

_PATH = re.compile(
    r"^((?:[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\])?)"
    r"(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\])?)*): ")
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9]+)\])?")


def field_path(request_descriptor, message):
    """The field path that `message` starts with, if every name of it is a
    field of `request_descriptor` (nested), else None."""
    if request_descriptor is None or not message:
        return None
    match = _PATH.match(message)
    if match is None:
        return None
    path = match.group(1)
    descriptor = request_descriptor
    for segment in path.split("."):
        name, index = _SEGMENT.fullmatch(segment).groups()
        if descriptor is None:
            return None
        field = descriptor.fields_by_name.get(name)
        if field is None:
            return None
        repeated = field.label == field.LABEL_REPEATED
        if index is not None and not repeated:
            return None
        # A repeated message field without an index names the whole list;
        # nothing can follow it.
        descriptor = (field.message_type
                      if index is not None or not repeated else None)
    return path


class LeptonError(Exception):
    """A call that failed.

    Attributes:
      code:     the grpc.StatusCode.
      message:  the server's message (gRPC's, for a transport failure).
      field:    the 0-based path of the field at fault ("examples[3].label"),
                when the message names one; None otherwise. For calls that the
                client splits into several requests (Client.predict with more
                rows than its batch_size), the first index is the row of X.
      method:   the RPC ("Update").
      batch:    StreamUpdate (Model.train): the 0-based index of the batch
                that was refused; None for other calls.
      examples_applied: StreamUpdate: the examples of the batches applied and
                acknowledged before it; None for other calls.
    """

    def __init__(self, code, message, method=None, field=None, batch=None,
                 examples_applied=None):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.method = method
        self.field = field
        self.batch = batch
        self.examples_applied = examples_applied

    def __str__(self):
        where = f"{self.method}: " if self.method else ""
        if self.batch is not None:
            where += (f"batch {self.batch} ({self.examples_applied} examples "
                      "applied before it): ")
        name = self.code.name if isinstance(self.code, grpc.StatusCode) \
            else str(self.code)
        return f"{where}{self.message} ({name})"

    def __reduce__(self):
        return (LeptonError, (self.code, self.message, self.method,
                              self.field, self.batch, self.examples_applied))

    @classmethod
    def from_rpc_error(cls, error, method, request_descriptor=None):
        """A LeptonError of a grpc.RpcError raised by a call of `method`."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        message = message or ""
        return cls(code, message, method,
                   field_path(request_descriptor, message))

    def _shift_index(self, list_field, offset):
        """Adds `offset` to the index of a path starting with list_field[i]
        (in .field and .message): the row of X rather than of one request."""
        if not offset or self.field is None:
            return
        match = re.match(rf"^{re.escape(list_field)}\[([0-9]+)\]", self.field)
        if match is None:
            return
        old = match.group(0)
        new = f"{list_field}[{int(match.group(1)) + offset}]"
        self.field = new + self.field[len(old):]
        if self.message.startswith(old):
            self.message = new + self.message[len(old):]
        self.args = (self.code, self.message)
