#!/usr/bin/env python3
"""A webhook receiver on loopback for tests/test_signed_webhooks.c.

It verifies each delivery with the verify() function of docs/service.md
("Signed webhooks"), taken from that file as it is, so the documented
receiver is the tested one. Usage: receiver.py DOCS SECRET LOG; prints the
port it listens on, then appends one line per request to LOG:
"ok <webhook-id>" (answered 200) or "refused <reason>" (answered 401).
A request to /replay?after=S is verified as if it came S seconds later.
Each verified delivery is also kept, headers and body, in LOG.last.
"""
import json, re, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

docs, secret, log = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(docs, encoding="utf-8").read()
section = text[text.index("## Signed webhooks"):]
code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
ns = {}
exec(code, ns)
verify = ns["verify"]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        url = urllib.parse.urlparse(self.path)
        after = float(urllib.parse.parse_qs(url.query).get("after", ["0"])[0])
        import time
        try:
            msg_id = verify(secret, headers, body, now=time.time() + after)
            line, status = f"ok {msg_id}", 200
            if url.path == "/hook":
                with open(log + ".last", "w") as f:
                    json.dump({"headers": headers, "body": body.decode()}, f)
        except (ValueError, KeyError) as e:
            line, status = f"refused {e}", 401
        with open(log, "a") as f:
            f.write(line + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
