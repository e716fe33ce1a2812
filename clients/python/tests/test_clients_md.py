"""docs/clients.md's snippets, every fenced block of the page, in order,
against a server of the test's own (its address in place of
localhost:50051):

  python  run in one namespace, in this process (PYTHONPATH has build/python
          and build/inference_python, as the page says);
  sh      run by bash -e in a scratch checkout (proto/ and clients/node/,
          without node_modules), from its top, so `npm ci` installs there;
  js      saved in the scratch checkout's clients/node/ under the name its
          first line gives (`// NAME.js: ...`) and run with node;
  text    the output of the block before it, compared with what that block
          printed on stdout: a line `...` stands for any number of lines,
          `...` within a line for any text of that line.

Any other block fails the test: no snippet on the page goes unrun. Node.js
and npm must be installed (scripts/install-deps.sh installs Debian's), and
`npm ci` reaches the npm registry unless npm's cache has the packages.
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from lepton.sklearn import close_connections

SOURCE = pathlib.Path(os.environ["LEPTON_SOURCE_DIR"])
DOC = SOURCE / "docs" / "clients.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks():
    """(language, code, line) of every fenced block of the page."""
    text = DOC.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in BLOCK.finditer(text)]


def matches(expected, actual):
    """Whether `actual` is `expected`, where a line `...` stands for any
    number of lines and `...` within a line for any text of that line."""
    pattern = ""
    for line in expected.splitlines(keepends=True):
        if line.rstrip("\n") == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += r"[^\n]*?".join(re.escape(p) for p in line.split("..."))
    return re.fullmatch(pattern, actual) is not None


def scratch_checkout(root):
    """The files the shell and JavaScript snippets use, laid out as in a
    checkout: proto/ and clients/node/ (no node_modules)."""
    shutil.copytree(SOURCE / "proto", root / "proto")
    shutil.copytree(SOURCE / "clients" / "node", root / "clients" / "node",
                    ignore=shutil.ignore_patterns("node_modules"))
    return root


def run(argv, cwd, target, what):
    env = dict(os.environ, LEPTON_TARGET=target)
    env.pop("NODE_PATH", None)  # the snippets' own node_modules, from npm ci
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"{what} exited {result.returncode}\n"
                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout


def test_every_snippet_of_clients_md_runs(server, client, tmp_path, capsys):
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: docs/clients.md's Node.js snippets "
                        "need Node.js 18 or newer and npm "
                        "(scripts/install-deps.sh installs Debian's)")
    found = blocks()
    languages = [language for language, _, _ in found]
    assert languages.count("python") == 3 and languages.count("sh") == 2 \
        and languages.count("js") == 1, \
        f"docs/clients.md's snippets changed ({languages}): update this test"
    checkout = scratch_checkout(tmp_path / "checkout")
    namespace = {"__name__": "clients_md"}
    outputs = []  # what each block printed, and where it starts
    try:
        for language, code, line in found:
            where = f"{DOC}:{line}"
            code = code.replace("localhost:50051", server.target)
            if language == "text":
                assert outputs, f"{where}: an output block with no snippet before it"
                printed, snippet_line = outputs.pop()
                assert matches(code, printed), (
                    f"{where}: the output of the snippet at line {snippet_line} "
                    f"differs from the page\npage:\n{code}\nprinted:\n{printed}")
                continue
            if language == "python":
                capsys.readouterr()
                exec(compile(code, where, "exec"), namespace)
                printed = capsys.readouterr().out
            elif language == "sh":
                printed = run(["bash", "-e", "-c", code], checkout,
                              server.target, where)
            elif language == "js":
                name = re.match(r"// (\w+\.js):", code)
                assert name, f"{where}: the first line must be `// NAME.js: ...`"
                path = checkout / "clients" / "node" / name.group(1)
                path.write_text(code)
                printed = run(["node", path.name], path.parent, server.target,
                              where)
            else:
                pytest.fail(f"{where}: a ```{language} block, which this test "
                            "cannot run: every snippet of the page must run")
            outputs = [(printed, line)]
    finally:
        close_connections()
        namespace["client"].close() if "client" in namespace else None
    # What the snippets left on the server.
    names = [m.name for m in client.list_models()]
    for model in ("clients-ctr", "clients-iris", "node-example"):
        assert model in names, names
    assert client.model("node-example").info().version == 6
