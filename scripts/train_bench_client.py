#!/usr/bin/python3
"""The Python side of scripts/train_bench.sh: a gRPC client that streams
ready arrays into a Lepton model, to compare lepton_client train against.

It loads the CSV file into numpy arrays and builds every UpdateRequest of
--batch examples from them before the clock starts, so that the timed part is
what a Python client that already holds its data does: one StreamUpdate call
that sends the requests and reads their responses. Prints key: value lines
like lepton_client train's (examples, requests, seconds,
examples_per_second, version).

  train_bench_client.py --stubs=DIR --target=HOST:PORT --model=NAME FILE.csv

DIR holds lepton/v1/lepton_pb2.py and lepton_pb2_grpc.py, which the caller
generates with protoc and grpc_python_plugin (no generated code is kept in
the repository). Needs Debian's python3-grpcio, python3-numpy and
python3-protobuf.
"""
import argparse
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", help="CSV: label,x0,...,x{D-1} per line")
    parser.add_argument("--stubs", required=True,
                        help="directory of the generated Python stubs")
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc  # noqa: E402 (after the stubs' directory is on the path)
    import numpy as np
    from lepton.v1 import lepton_pb2, lepton_pb2_grpc

    data = np.loadtxt(args.file, delimiter=",", dtype=np.float32, ndmin=2)
    labels, pixels = data[:, 0], np.ascontiguousarray(data[:, 1:])
    # Features with `dense` only, built from the array's bytes: field 1,
    # packed floats (tag 0x0a, then the length as a varint).
    size = pixels.shape[1] * 4
    prefix = bytearray(b"\x0a")
    while size >= 0x80:
        prefix.append((size & 0x7F) | 0x80)
        size >>= 7
    prefix.append(size)
    prefix = bytes(prefix)
    requests = []
    for start in range(0, len(labels), args.batch):
        request = lepton_pb2.UpdateRequest(model=args.model)
        for i in range(start, min(start + args.batch, len(labels))):
            example = request.examples.add()
            example.label = float(labels[i])
            example.features.ParseFromString(prefix + pixels[i].tobytes())
        requests.append(request)

    channel = grpc.insecure_channel(args.target)
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = lepton_pb2_grpc.ModelServiceStub(channel)
    examples = 0
    answered = 0
    version = 0
    start = time.perf_counter()
    for response in stub.StreamUpdate(iter(requests)):
        examples += response.examples
        answered += 1
        version = response.version
    seconds = time.perf_counter() - start
    if answered != len(requests):
        sys.exit(f"train_bench_client: {answered} responses for "
                 f"{len(requests)} requests")
    print(f"examples: {examples}")
    print(f"requests: {answered}")
    print(f"seconds: {seconds:.3f}")
    print(f"examples_per_second: {examples / seconds:.0f}")
    print(f"version: {version}")


if __name__ == "__main__":
    main()
