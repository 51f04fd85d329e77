"""A stand-in OpenStack API behind the bed's HAProxy: answers GET / with 200 (a directory
listing), over plain HTTP or, given a certificate and key, over TLS.

    python3 api_server.py ADDRESS PORT [CERT KEY]
"""
import functools
import http.server
import ssl
import sys


def main():
    address, port = sys.argv[1], int(sys.argv[2])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=".")
    server = http.server.ThreadingHTTPServer((address, port), handler)
    if len(sys.argv) > 4:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
