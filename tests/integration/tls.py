"""A real TLS front for a plain-HTTP service of the box, for the tests of CloudPulse's TLS
settings: a private CA, a server certificate for 127.0.0.1 (made with `cryptography`,
which paramiko already brings), and a TLS-terminating TCP proxy on loopback."""

import datetime
import ipaddress
import select
import socket
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_cert(directory):
    """(ca.pem, server.pem, server.key) in `directory`: a CA, and a certificate it signs
    for 127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("CloudPulse test CA"))
          .issuer_name(_name("CloudPulse test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [directory / "ca.pem", directory / "server.pem", directory / "server.key"]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return [str(p) for p in paths]


class TLSProxy:
    """https://127.0.0.1:<port> in front of a plain TCP service; stops on exit."""

    def __init__(self, upstream, cert, key):
        self.upstream = upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()

    def __enter__(self):
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.listener.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client):
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()   # the client refused our certificate: what a test may expect
            return
        upstream = socket.create_connection(self.upstream, timeout=30)
        threading.Thread(target=self._relay, args=(tls, upstream), daemon=True).start()

    @staticmethod
    def _relay(tls, upstream):
        """Both directions in one thread: an SSL socket read and written from two threads
        at once corrupts its records (the client then sees an unexpected message)."""
        try:
            while True:
                # Data OpenSSL already decrypted is not visible to select().
                readable = ([tls] if tls.pending()
                            else select.select([tls, upstream], [], [], 30)[0])
                if not readable:
                    return   # idle for 30 s
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (upstream if src is tls else tls).sendall(data)
        except OSError:   # ssl.SSLError included
            pass
        finally:
            for s in (tls, upstream):
                try:
                    s.close()
                except OSError:
                    pass
