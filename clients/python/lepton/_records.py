"""Protobuf messages to plain Python values, and keyword settings to messages.

Answers (ModelInfo, UpdateResponse, ModelEvent, ...) become `Record`s: the
message's fields as attributes, named as in proto/lepton/v1/lepton.proto,
with enums as their names ("SOFTMAX_REGRESSION"), Timestamps as aware
datetimes (None when unset), repeated fields as lists, and a proto3
`optional` field that is unset as None.
"""
import datetime
import os
import types
from collections.abc import Mapping

import numpy as np
from google.protobuf.descriptor import FieldDescriptor


class Record(types.SimpleNamespace):
    """An answer of the server: attributes named as the proto's fields."""

    def to_dict(self):
        """The record as nested dicts and lists."""
        def plain(value):
            if isinstance(value, Record):
                return value.to_dict()
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value
        return {k: plain(v) for k, v in vars(self).items()}


def _is_repeated(field):
    return field.label == FieldDescriptor.LABEL_REPEATED


def _enum_name(enum_type, number):
    value = enum_type.values_by_number.get(number)
    return value.name if value is not None else number


def _scalar(field, value):
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_name(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_FLOAT:
        # The shortest decimal that round-trips the float32, so that a
        # learning_rate sent as 0.1 reads back as 0.1, not 0.10000000149.
        return float(str(np.float32(value)))
    return value


def to_record(message):
    """A Record of `message`, recursively (see the module's comment)."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if _is_repeated(field):
            if field.message_type is not None:
                out[field.name] = [to_record(v) for v in value]
            else:
                out[field.name] = [_scalar(field, v) for v in value]
        elif field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                out[field.name] = (
                    datetime.datetime.fromtimestamp(
                        value.seconds + value.nanos / 1e9,
                        tz=datetime.timezone.utc)
                    if message.HasField(field.name) else None)
            else:
                out[field.name] = to_record(value)
        elif field.has_presence and not message.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _scalar(field, value)
    return Record(**out)


def enum_value(enum_type, value, path):
    """The number of `value` in `enum_type`: a number, or a name in any case,
    where a part of the name between underscores is enough if it names one
    value only ("softmax" for SOFTMAX_REGRESSION, "reject" for
    GUARDRAIL_REJECT)."""
    if isinstance(value, bool):
        raise TypeError(f"{path}: expected a name of {enum_type.name}, "
                        f"got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        if name in enum_type.values_by_name:
            return enum_type.values_by_name[name].number
        matches = [v for v in enum_type.values if v.number != 0 and (
            v.name.startswith(name + "_") or v.name.endswith("_" + name))]
        if len(matches) == 1:
            return matches[0].number
    names = ", ".join(v.name for v in enum_type.values if v.number != 0)
    raise ValueError(f"{path}: {value!r} is not one of {names}")


def fill(message, settings, path=""):
    """Sets the fields of `message` from a mapping of field names to values:
    nested mappings for message fields, names for enums, lists (or a
    comma-separated string) for repeated fields. TypeError names an unknown
    field."""
    for key, value in settings.items():
        field = message.DESCRIPTOR.fields_by_name.get(key)
        where = f"{path}{key}"
        if field is None:
            known = ", ".join(f.name for f in message.DESCRIPTOR.fields)
            raise TypeError(f"{where}: no such setting of "
                            f"{message.DESCRIPTOR.name} (known: {known})")
        if value is None:
            continue
        if _is_repeated(field):
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            container = getattr(message, key)
            del container[:]
            if field.type == FieldDescriptor.TYPE_ENUM:
                value = [enum_value(field.enum_type, v, where) for v in value]
            container.extend(value)
        elif field.message_type is not None:
            sub = getattr(message, key)
            if isinstance(value, type(sub)):
                sub.CopyFrom(value)
            elif isinstance(value, Mapping):
                fill(sub, value, where + ".")
                sub.SetInParent()
            else:
                raise TypeError(f"{where}: expected a dict of "
                                f"{field.message_type.name} settings, "
                                f"got {value!r}")
        elif field.type == FieldDescriptor.TYPE_ENUM:
            setattr(message, key, enum_value(field.enum_type, value, where))
        else:
            setattr(message, key, value)


def read_pem(value, what):
    """PEM bytes from bytes, PEM text, or a file name."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and "-----BEGIN" in value:
        return value.encode()
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as f:
            return f.read()
    raise TypeError(f"{what}: expected PEM bytes or a file name, "
                    f"got {type(value).__name__}")
