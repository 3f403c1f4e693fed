"""The package as a user installs it: a venv with --system-site-packages
(Debian's grpcio, protobuf, numpy), `pip install` offline, then a small script
run from outside the source tree imports the installed copy."""

import os
import shutil
import subprocess
import sys

from conftest import PACKAGE_DIR

SCRIPT = """
import sys
import numpy as np
import relu_serve, relu_serve.aio, relu_serve.oip
import os
assert relu_serve.__file__.startswith(sys.prefix), relu_serve.__file__
here = os.path.dirname(relu_serve.__file__)
assert os.path.exists(os.path.join(here, "py.typed"))
assert os.path.exists(os.path.join(here, "_proto", "relu_pb2.pyi"))
with relu_serve.Client(sys.argv[1]) as client:
    print(client.apply(np.float32([-5.0, -2.0, 0.0, 3.0]), max_value=2.0))
    print(client.health())
try:
    relu_serve.Client(sys.argv[1]).apply([1.0], threshold=-1.0)
except ValueError as error:
    print(error)
"""


def test_pip_install_in_a_venv_offline(server, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages",
                    str(venv)], check=True)
    # Build from a copy, so the source tree gets no build/ or egg-info.
    source = tmp_path / "src"
    shutil.copytree(PACKAGE_DIR, source,
                    ignore=shutil.ignore_patterns("__pycache__", "build",
                                                  "*.egg-info"))
    # pip gets no index and a proxy that refuses: any attempt to reach the
    # network would fail the install.
    offline = dict(os.environ, PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1",
                   PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="",
                   http_proxy="http://127.0.0.1:9",
                   https_proxy="http://127.0.0.1:9")
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                    "--no-index", "--no-build-isolation", str(source)],
                   check=True, env=offline)
    shutil.rmtree(source)
    (tmp_path / "use_it.py").write_text(SCRIPT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(venv / "bin" / "python"),
                             str(tmp_path / "use_it.py"), server.target],
                            check=True, capture_output=True, text=True,
                            cwd=elsewhere,
                            env=dict(os.environ, PYTHONPATH=""))
    assert result.stdout == (
        "[0. 0. 0. 2.]\nSERVING\nthreshold of a ReLU layer cannot be a "
        "negative value. Received: threshold=-1.0\n")
