"""A stand-in for the Kubernetes API server's service proxy, for `kfbox run --target cluster`.

It does what kfbox relies on the real one for: HTTPS with the cluster's CA, a client
certificate required (a connection without one is refused in the handshake), and requests to
/api/v1/namespaces/NAMESPACE/services/SERVICE/proxy/REST forwarded to the service as /REST.
Here the "service" is a `kfbox up`, which speaks KFP's API. Nothing else is served.

    python kube_service_proxy.py PORT_FILE CERT KEY CA PREFIX UPSTREAM
"""

import http.server
import os
import ssl
import sys
import urllib.error
import urllib.request

port_file, cert, key, ca, prefix, upstream = sys.argv[1:7]


class Proxy(http.server.BaseHTTPRequestHandler):
    def forward(self):
        if not self.path.startswith(prefix):
            self.answer(404, b'{"kind":"Status","status":"Failure","code":404}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        request = urllib.request.Request(
            upstream + "/" + self.path[len(prefix):], data=body, method=self.command
        )
        if self.headers.get("Content-Type"):
            request.add_header("Content-Type", self.headers["Content-Type"])
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                self.answer(response.status, response.read())
        except urllib.error.HTTPError as error:
            self.answer(error.code, error.read())

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = forward

    def log_message(self, *args):
        pass


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.load_verify_locations(ca)
context.verify_mode = ssl.CERT_REQUIRED
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
