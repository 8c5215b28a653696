"""A stand-in for ALERT_WEBHOOK_URL in scripts/test-airflow.sh: accepts POSTs on a free loopback port and
appends each body as one line to OUT_FILE, so the test can check what the DAG's notify step sent.

    python webhook_sink.py PORT_FILE OUT_FILE        (writes the chosen port to PORT_FILE once listening)
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port_file, out_file = sys.argv[1], sys.argv[2]


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out_file, "ab") as out:
            out.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


server = HTTPServer(("127.0.0.1", 0), Sink)
with open(port_file, "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
