"""Deploy fixtures: a stand-in for the GCE metadata server, where Dataflow workers get credentials."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOKEN = {"access_token": "local-test-token", "expires_in": 3600, "token_type": "Bearer"}
ACCOUNT = {"email": "worker@altvoice-test.iam.gserviceaccount.com", "aliases": ["default"],
           "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}


class _Metadata(BaseHTTPRequestHandler):
    """The few metadata paths google-auth reads: the ping, the project, the account and its token."""

    requests: list = []  # paths asked for, in order

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0].rstrip("/")
        self.requests.append(path)
        if self.headers.get("Metadata-Flavor") != "Google":
            return self._reply(403, "text/plain", "missing Metadata-Flavor header")
        if path == "":
            return self._reply(200, "text/plain", "")
        if path.endswith("/project/project-id"):
            return self._reply(200, "text/plain", "altvoice-test")
        if path.endswith("/token"):
            return self._reply(200, "application/json", json.dumps(TOKEN))
        if "/instance/service-accounts/" in path:
            return self._reply(200, "application/json", json.dumps(ACCOUNT))
        return self._reply(404, "text/plain", "not here")

    def _reply(self, status, kind, body):
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def worker_credentials(gcs):
    """Beam worker processes look for Google credentials before touching gs:// and, finding none,
    retry for ~30 s (the `gcs` fixture's shortcut only reaches this process). On Dataflow they come
    from the GCE metadata server; here a local one answers, reached by the same env variables
    google-auth reads, which the multi-processing workers inherit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    patch = pytest.MonkeyPatch()
    patch.setenv("GCE_METADATA_HOST", host)
    patch.setenv("GCE_METADATA_IP", host)
    _Metadata.requests = []
    yield {"bucket": gcs, "requests": _Metadata.requests}
    patch.undo()
    server.shutdown()
