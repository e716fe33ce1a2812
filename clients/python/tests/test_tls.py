"""TLS, mutual TLS and bearer tokens through lepton.Client and the
scikit-learn estimator, against lepton_server with --tls_cert, --tls_key,
--tls_client_ca and --auth_tokens. The certificates are made by openssl in
a temporary directory, as tests/integration/tls_test.cc makes them (nothing
secret is committed)."""
import subprocess

import grpc
import numpy as np
import pytest

import lepton
from lepton.sklearn import LeptonClassifier, close_connections

from conftest import ServerProcess

ADMIN = "python-tls-test-admin-token-0123456789"
WRITER = "python-tls-test-writer-token-0123456789"
READER = "python-tls-test-reader-token-0123456789"


def openssl(*args):
    result = subprocess.run(["/usr/bin/openssl", *args], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


class Certificates:
    def __init__(self, directory):
        self.dir = directory
        self.ca("ca", "Lepton test CA")
        self.ca("other-ca", "Some other CA")
        self.leaf("server", "ca", "localhost",
                  "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                  "extendedKeyUsage=serverAuth\n")
        self.leaf("named", "ca", "lepton.test",
                  "subjectAltName=DNS:lepton.test\n"
                  "extendedKeyUsage=serverAuth\n")
        self.leaf("client", "ca", "lepton-client", "extendedKeyUsage=clientAuth\n")
        self.leaf("stranger", "other-ca", "lepton-client",
                  "extendedKeyUsage=clientAuth\n")

    def path(self, name):
        return str(self.dir / name)

    def ca(self, name, cn):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=" + cn, "-keyout", self.path(name + ".key"),
                "-out", self.path(name + ".pem"))

    def leaf(self, name, ca, cn, extensions):
        (self.dir / (name + ".ext")).write_text(extensions)
        openssl("req", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=" + cn,
                "-keyout", self.path(name + ".key"), "-out",
                self.path(name + ".csr"))
        openssl("x509", "-req", "-in", self.path(name + ".csr"), "-CA",
                self.path(ca + ".pem"), "-CAkey", self.path(ca + ".key"),
                "-set_serial", "1", "-days", "1", "-extfile",
                self.path(name + ".ext"), "-out", self.path(name + ".pem"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    certificates = Certificates(directory)
    tokens = directory / "tokens.txt"
    tokens.write_text(f"# token role\n{ADMIN} admin\n{WRITER} writer\n"
                      f"{READER} reader\n")
    tokens.chmod(0o600)
    (directory / "admin.token").write_text(ADMIN + "\n")
    return certificates


def start(tmp_path_factory, certs, cert="server", mutual=False, tokens=False):
    flags = ["--tls_cert=" + certs.path(cert + ".pem"),
             "--tls_key=" + certs.path(cert + ".key")]
    if mutual:
        flags.append("--tls_client_ca=" + certs.path("ca.pem"))
    if tokens:
        flags.append("--auth_tokens=" + certs.path("tokens.txt"))
    return ServerProcess(tmp_path_factory.mktemp("tls-server"), flags,
                         data=False)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    """TLS and tokens."""
    server = start(tmp_path_factory, certs, tokens=True)
    yield server
    close_connections()  # the estimator's, before the SIGTERM
    assert server.stop() == 0, server.log_text()


def code_of(call):
    with pytest.raises(lepton.LeptonError) as e:
        call()
    return e.value.code


def localhost(server):
    return f"localhost:{server.port}"


def test_tls_with_a_ca_file_bytes_or_text(tls_server, certs):
    pem = open(certs.path("ca.pem"), "rb").read()
    for tls in (certs.path("ca.pem"), pem, pem.decode()):
        for target in (localhost(tls_server), tls_server.target):
            with lepton.Client(target, token=ADMIN, tls=tls, timeout=10) as c:
                assert isinstance(c.list_models(), list)


def test_tls_refuses_plaintext_and_other_cas(tls_server, certs):
    with lepton.Client(tls_server.target, token=ADMIN, timeout=5) as c:
        assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
    with lepton.Client(localhost(tls_server), token=ADMIN,
                       tls=certs.path("other-ca.pem"), timeout=5) as c:
        assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
    # tls=True verifies with the system's CAs, which do not know ours.
    with lepton.Client(localhost(tls_server), token=ADMIN, tls=True,
                       timeout=5) as c:
        assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE


def test_tokens_and_roles(tls_server, certs):
    ca = certs.path("ca.pem")
    target = localhost(tls_server)
    with lepton.Client(target, tls=ca, timeout=10) as anonymous:
        assert code_of(anonymous.list_models) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert anonymous.health() == "SERVING"  # health needs no token
    with lepton.Client(target, token="not-a-known-token-0123456789", tls=ca,
                       timeout=10) as stranger:
        assert code_of(stranger.list_models) == grpc.StatusCode.UNAUTHENTICATED
    admin = lepton.Client(target, token_file=certs.path("admin.token"),
                          tls=ca, timeout=10)
    model = admin.create_model("tls-roles", type="logistic", num_features=2)
    with lepton.Client(target, token=WRITER, tls=ca, timeout=10) as writer:
        assert writer.model("tls-roles").update([[1, 0]], [1]).version == 2
        with pytest.raises(lepton.LeptonError) as e:
            writer.model("tls-roles").export()
        assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "needs role admin" in e.value.message
        assert e.value.field is None
    with lepton.Client(target, token=READER, tls=ca, timeout=10) as reader:
        assert reader.model("tls-roles").predict([[1, 0]]).shape == (1,)
        assert code_of(lambda: reader.model("tls-roles").update([[1, 0]], [1])) \
            == grpc.StatusCode.PERMISSION_DENIED
    model.delete()
    admin.close()
    # No token reaches the log.
    log = tls_server.log_text()
    assert ADMIN not in log and WRITER not in log and READER not in log


def test_tls_server_name(tmp_path_factory, certs):
    """A certificate for lepton.test only, reached at 127.0.0.1."""
    server = start(tmp_path_factory, certs, cert="named")
    try:
        ca = certs.path("ca.pem")
        with lepton.Client(server.target, tls=ca, timeout=5) as c:
            assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
        with lepton.Client(server.target, tls=ca, tls_server_name="lepton.test",
                           timeout=10) as c:
            assert c.list_models() == []
    finally:
        assert server.stop() == 0, server.log_text()


def test_mutual_tls(tmp_path_factory, certs):
    server = start(tmp_path_factory, certs, mutual=True)
    try:
        ca, target = certs.path("ca.pem"), localhost(server)
        with lepton.Client(target, tls=ca, tls_cert=certs.path("client.pem"),
                           tls_key=certs.path("client.key"), timeout=10) as c:
            assert c.list_models() == []
        with lepton.Client(target, tls=ca, timeout=5) as c:
            assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
        with lepton.Client(target, tls=ca, tls_cert=certs.path("stranger.pem"),
                           tls_key=certs.path("stranger.key"), timeout=5) as c:
            assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(ValueError, match="both or neither"):
            lepton.Client(target, tls=ca, tls_cert=certs.path("client.pem"))
    finally:
        assert server.stop() == 0, server.log_text()


def test_estimator_over_tls_with_a_token(tls_server, certs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = LeptonClassifier(localhost(tls_server), model="tls-sklearn",
                           token=ADMIN, tls=certs.path("ca.pem"), epochs=3)
    assert clf.fit(X, y).score(X, y) > 0.9
    with lepton.Client(localhost(tls_server), token=READER,
                       tls=certs.path("ca.pem")) as reader:
        assert reader.get_model("tls-sklearn").examples_seen == 600
    clf_reader = LeptonClassifier(localhost(tls_server), model="tls-sklearn",
                                  token=READER, tls=certs.path("ca.pem"))
    with pytest.raises(lepton.LeptonError) as e:
        clf_reader.fit(X, y)  # fit deletes and creates: admin only
    assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
