"""lepton: a Python client of Lepton, the gRPC server of models that learn
while they serve (docs/python.md).

  import lepton
  client = lepton.Client("localhost:50051")
  model = client.create_model("ctr", type="logistic", num_features=3)
  model.update(X, y)
  model.predict_proba(X)

lepton.sklearn has scikit-learn estimators backed by a model on a server.
The generated stubs are in lepton.v1 (lepton_pb2, lepton_pb2_grpc).
"""
from lepton._records import Record
from lepton.client import Client, Model, PredictResult, Watch, build_spec
from lepton.errors import LeptonError

__all__ = ["Client", "Model", "PredictResult", "Watch", "Record",
           "LeptonError", "build_spec"]
