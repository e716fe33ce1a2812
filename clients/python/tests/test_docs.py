"""docs/python.md's Python snippets, run in order in one namespace against a
server of the test's own (its address in place of localhost:50051), in a
directory holding the files the TLS snippet names (made by openssl)."""
import os
import pathlib
import re
import shutil

from lepton.sklearn import close_connections

from test_tls import Certificates

DOC = pathlib.Path(os.environ["LEPTON_SOURCE_DIR"]) / "docs" / "python.md"


def test_python_md_snippets_run(server, client, tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 6, "docs/python.md's snippets changed: update this test"
    (tmp_path / "certs").mkdir()
    certs = Certificates(tmp_path / "certs")
    for name in ("ca.pem", "client.pem", "client.key"):
        shutil.copy(certs.path(name), tmp_path / name)
    (tmp_path / "lepton.token").write_text("docs-test-token-0123456789\n")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs"}
    try:
        for i, code in enumerate(blocks):
            code = code.replace("localhost:50051", server.target)
            exec(compile(code, f"{DOC}:python-block-{i}", "exec"), namespace)
    finally:
        close_connections()
        # The snippets' clients (the TLS one replaces `client`), so that the
        # server's SIGTERM need not wait for their idle connections.
        for value in ("client", "model"):
            handle = namespace.get(value)
            getattr(handle, "client", handle).close() if handle else None
    out = capsys.readouterr().out
    # The error snippet prints what its comment says.
    assert "StatusCode.INVALID_ARGUMENT examples[2].label\n" in out
    names = [m.name for m in client.list_models()]
    assert "quickstart" in names and "ctr" in names
    assert "quickstart-copy" not in names
    assert namespace["pipeline"].score(namespace["X_test"],
                                       namespace["y_test"]) > 0.9
    close_connections()
    assert namespace["event"].kind == "VERSION_PUBLISHED"
