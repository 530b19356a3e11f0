"""A webhook and beacon receiver for trying the example estate locally: answers 200 to every
POST, PUT or GET on 127.0.0.1:9095 and prints what it got (path, then the body).

    python3 examples/webhook-receiver.py [port]
"""

import http.server
import sys


class Receiver(http.server.BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        print(f"{self.command} {self.path}\n{body}\n", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_GET = answer

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9095
print(f"listening on 127.0.0.1:{port}", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
