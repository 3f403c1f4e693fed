"""TLS and mutual TLS with a throwaway CA made by the openssl tool."""

import subprocess

import grpc
import numpy as np
import pytest

import relu_serve
import relu_serve.aio
import relu_serve.oip


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]

    def openssl(*args):
        subprocess.run(["/usr/bin/openssl"] + list(args), check=True,
                       capture_output=True)

    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out",
            str(d / "ca.pem"), "-days", "2", "-subj", "/CN=relu-test-ca")
    for who in ("server", "client"):
        openssl("req", *ec, "-keyout", str(d / (who + ".key")), "-out",
                str(d / (who + ".csr")), "-subj", "/CN=relu-test-" + who)
        openssl("x509", "-req", "-in", str(d / (who + ".csr")), "-CA",
                str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-out", str(d / (who + ".pem")), "-days",
                "2", "-extfile", str(d / "san.cnf"))
    return d


def test_server_tls(start_server, pki):
    server = start_server("--tls-cert=%s" % (pki / "server.pem"),
                          "--tls-key=%s" % (pki / "server.key"))
    with relu_serve.Client(server.target, tls_ca=str(pki / "ca.pem")) as c:
        assert c.apply(np.float32([-3, 3])).tolist() == [0, 3]
        assert c.health() == relu_serve.ServingStatus.SERVING
    with relu_serve.oip.Client(server.target,
                               tls_ca=str(pki / "ca.pem")) as c:
        assert c.apply(np.float64([-3, 3])).tolist() == [0, 3]
    # Plaintext to a TLS server fails, UNAVAILABLE.
    with relu_serve.Client(server.target, retries=0) as c:
        with pytest.raises(relu_serve.ReluServeError) as info:
            c.apply(np.float32([1]))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert server.stop() == 0


def test_mutual_tls(start_server, pki):
    server = start_server("--tls-cert=%s" % (pki / "server.pem"),
                          "--tls-key=%s" % (pki / "server.key"),
                          "--tls-client-ca=%s" % (pki / "ca.pem"))
    files = dict(tls_ca=str(pki / "ca.pem"), tls_cert=str(pki / "client.pem"),
                 tls_key=str(pki / "client.key"))
    with relu_serve.Client(server.target, **files) as c:
        assert c.apply(np.float16([-1, 1])).tolist() == [0, 1]

    async def run():
        async with relu_serve.aio.Client(server.target, **files) as c:
            return await c.apply(np.float32([-2, 2]), max_value=1.0)
    import asyncio  # pylint: disable=import-outside-toplevel
    assert asyncio.run(run()).tolist() == [0, 1]
    # Without a client certificate the handshake fails.
    with relu_serve.Client(server.target, tls_ca=str(pki / "ca.pem"),
                           retries=0) as c:
        with pytest.raises(relu_serve.ReluServeError) as info:
            c.apply(np.float32([1]))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert server.stop() == 0
