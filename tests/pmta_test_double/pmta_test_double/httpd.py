# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: ``pmtahttpd``, the web monitor on ``http-mgmt-port``.

Serves ``GET /status``, ``/queues`` and ``/vmtas`` (``?format=json``) to clients
that an ``http-access`` line grants ``monitor`` or more (first match wins,
default none), reading settings from the running ``pmtad`` on every request so
a reload applies at once. The port itself is read at start: changing it needs
a ``pmtahttp`` restart, as in PowerMTA.
"""

from __future__ import annotations

import argparse
import errno
import http.server
import ipaddress
import json
import os
import socketserver
import sys
import time
import urllib.parse

from . import PRODUCT
from .cli import DaemonDown, ask

LEVELS = {"none": 0, "monitor": 1, "operator": 2, "admin": 3}
# §3.3.1.36.3: "see the pmtahttp.log file for errors".
HTTP_LOG = os.environ.get("PMTA_TD_HTTP_LOG", "/var/log/pmta/pmtahttp.log")


def _log_error(text):
    print("pmtahttpd: %s" % text, file=sys.stderr)
    try:
        with open(HTTP_LOG, "a", encoding="utf-8") as handle:
            handle.write("%s pmtahttpd: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), text))
    except OSError:
        pass


def access_level(client_ip, rules):
    address = ipaddress.ip_address(client_ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    for network, level in rules:
        network = ipaddress.ip_network(network, strict=False)
        if address.version == network.version and address in network:
            return LEVELS.get(level, 0)
    return 0


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "PowerMTA-TEST-DOUBLE-httpd"

    def log_message(self, format, *args):  # noqa: A002 (signature from the base class)
        sys.stderr.write("%s %s %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), self.client_address[0], format % args))

    def send(self, code, body, content_type="text/plain; charset=utf-8", headers=None):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (name from the base class)
        try:
            http_settings = ask("http")["result"]
        except DaemonDown as exc:
            self.send(503, "%s\n" % exc)
            return
        client = self.client_address[0]
        if client.startswith("::ffff:"):
            client = client[7:]
        if access_level(client, http_settings["access"]) < LEVELS["monitor"]:
            self.send(403, "Access denied: no http-access entry grants %s monitor access\n" % client)
            return
        if http_settings["redirect_to_https"]:
            host = self.headers.get("Host", "localhost")
            self.send(301, "use HTTPS\n", headers={"Location": "https://%s%s" % (host, self.path)})
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        page = url.path.strip("/") or "status"
        if page not in ("status", "queues", "vmtas"):
            self.send(404, "not implemented by the %s: /%s\n" % (PRODUCT, page))
            return
        result = ask(page)["result"]
        if query.get("format", [""])[0] == "json":
            self.send(200, json.dumps(result), "application/json")
        else:
            self.send(200, "%s\n%s\n" % (PRODUCT, json.dumps(result, indent=2)))


class Server4(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server(Server4):
    address_family = socketserver.socket.AF_INET6

    def server_bind(self):
        # One dual-stack socket, so IPv4 clients arrive as ::ffff:a.b.c.d.
        self.socket.setsockopt(socketserver.socket.IPPROTO_IPV6, socketserver.socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pmtahttpd", description="PowerMTA TEST DOUBLE web monitor (not PowerMTA)")
    parser.add_argument("--port", type=int, help="override http-mgmt-port (tests only)")
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        for _attempt in range(30):
            try:
                port = ask("http")["result"]["port"]
                break
            except DaemonDown:
                time.sleep(1)
        else:
            print("pmtahttpd: pmtad is not running", file=sys.stderr)
            return 1
    if port == 0:
        print("pmtahttpd: http-mgmt-port is 0, web monitor disabled", file=sys.stderr)
        while True:
            time.sleep(3600)
    try:
        try:
            server = Server(("::", port), Handler)
        except OSError as exc:
            if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                raise
            server = Server4(("0.0.0.0", port), Handler)  # no IPv6 in this network namespace
    except OSError as exc:
        # §3.3.1.36.1: "other software running on the same host may already be using that port": the web
        # monitor cannot start (an SMTP listener on the same port included); the error goes to pmtahttp.log.
        _log_error("cannot listen on http-mgmt-port %d: %s" % (port, exc.strerror or exc))
        return 1
    print("pmtahttpd (TEST DOUBLE) listening on port %d" % port, file=sys.stderr)
    server.serve_forever()
    return 0
