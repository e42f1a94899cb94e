"""A site's own service for Victoria's agent tools, to try them: opening hours and order status.

    python3 examples/site_service.py            # http://127.0.0.1:8081/hours and /orders
Standard library only. Each tool POSTs its arguments as JSON; the answer is JSON for the model to read.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOURS = {"monday": "9:00-18:00", "saturday": "10:00-14:00", "sunday": "closed"}
ORDERS = {"4411": "shipped on Monday, arriving Thursday", "5120": "being packed, ships tomorrow"}


class Site(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/hours":
            day = str(asked.get("day", "")).lower()
            answer = {"day": day, "hours": HOURS.get(day, "9:00-18:00")}
        elif self.path == "/orders" and str(asked.get("order")) in ORDERS:
            answer = {"order": asked["order"], "status": ORDERS[str(asked["order"])]}
        else:
            self.send_error(404, "no such order" if self.path == "/orders" else "no such service")
            return
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    ThreadingHTTPServer(("127.0.0.1", port), Site).serve_forever()
