"""proto/ is the one source of the API: the committed generated modules must
be what protoc makes of it today, and the package's constants must agree
with the descriptors."""

import filecmp
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PACKAGE_DIR

sys.path.insert(0, PACKAGE_DIR)
import generate_protos  # noqa: E402  pylint: disable=wrong-import-position

import relu_serve  # noqa: E402
from relu_serve import _dtypes  # noqa: E402
from relu_serve._proto import health_pb2, relu_pb2  # noqa: E402

COMMITTED = os.path.join(PACKAGE_DIR, "relu_serve", "_proto")


def test_generated_modules_match_proto(tmp_path):
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    written = generate_protos.generate(str(tmp_path), protoc)
    committed = sorted(f for f in os.listdir(COMMITTED)
                       if f.endswith((".py", ".pyi")) and f != "__init__.py")
    assert sorted(written) == committed
    match, mismatch, errors = filecmp.cmpfiles(str(tmp_path), COMMITTED,
                                               written, shallow=False)
    assert not mismatch and not errors, (
        "%s differ from what %s makes of proto/; run "
        "client/python/generate_protos.py and commit the result"
        % (mismatch + errors,
           subprocess.run([protoc, "--version"], capture_output=True,
                          text=True).stdout.strip()))
    assert sorted(match) == committed


def test_dtype_values_match_the_enum():
    for d in _dtypes.BY_NAME.values():
        assert relu_pb2.DataType.Value(
            "DATA_TYPE_" + d.name.upper()) == d.proto


def test_serving_status_matches_the_enum():
    enum = health_pb2.HealthCheckResponse.ServingStatus
    assert {s.name: s.value for s in relu_serve.ServingStatus} == dict(
        enum.items())


def test_help_reads():
    import pydoc  # pylint: disable=import-outside-toplevel
    text = pydoc.render_doc(relu_serve.Client, renderer=pydoc.plaintext)
    assert "tf.keras.layers.ReLU" in text
    assert "health_check_service" in text
    assert "InvalidArgumentError" in text
