"""The examples of client/python: the plot script (headless, Agg, a PNG) and
the README's five-line example."""

import os
import re
import subprocess
import sys

from conftest import PACKAGE_DIR


def test_plot_script_writes_a_png(server, tmp_path):
    out = tmp_path / "relu.png"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=PACKAGE_DIR,
               MPLCONFIGDIR=str(tmp_path))
    subprocess.run([sys.executable,
                    os.path.join(PACKAGE_DIR, "examples", "plot_relu.py"),
                    "--target", server.target, "--output", str(out)],
                   check=True, env=env)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_example_prints_the_tutorial_outputs(server, tmp_path):
    with open(os.path.join(PACKAGE_DIR, "README.md")) as f:
        readme = f.read()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) == 5
    code = code.replace("localhost:50051", server.target)
    result = subprocess.run([sys.executable, "-c", code], check=True,
                            capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=PACKAGE_DIR))
    assert result.stdout == (
        "[0. 0. 0. 3.]\n"
        "[0. 0. 0. 2.]\n"
        "[-10.  -4.   0.   3.]\n"
        "[-0. -0.  0.  3.]\n")
