"""The generated Protobuf messages of proto/lepton/v1/lepton.proto.

They are generated at build time into lepton/v1/ beside this package (the
CMake target lepton_python writes build/python/lepton/); none are kept in
the repository.
"""
try:
    from lepton.v1 import lepton_pb2 as pb
except ImportError as error:  # pragma: no cover (a wrong PYTHONPATH)
    raise ImportError(
        "lepton: the generated stubs lepton/v1/lepton_pb2.py are missing. "
        "Build the package with `cmake --build build --target lepton_python` "
        "and put build/python on PYTHONPATH (docs/python.md); the sources in "
        "clients/python/ do not import on their own.") from error

SERVICE = pb.DESCRIPTOR.services_by_name["ModelService"]

__all__ = ["pb", "SERVICE"]
