"""call_http end to end on devhost with Azurite: a 202-then-200 endpoint served by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.entities.conftest import output_of, start
from tests.hosts import RunningHost


@pytest.fixture(scope="module")
def job_server() -> Iterator[tuple[str, list[str]]]:
    """POST /job answers 202 with Location and Retry-After: 1; GET /job/status answers 200."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            if self.path == "/job":
                self.send_response(202)
                self.send_header("Location", f"http://127.0.0.1:{server.server_port}/job/status")
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                body = b"finished"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_202_is_polled_through_storage(entity_host: RunningHost, job_server: tuple[str, list[str]]) -> None:
    """The instance polls Location after Retry-After and completes once the endpoint answers 200."""
    base, seen = job_server
    output = output_of(entity_host, start(entity_host, "FetchUrl", {"method": "POST", "uri": f"{base}/job"}))
    assert seen == ["POST /job", "GET /job/status"]
    assert output["statusCode"] == 202  # the SDK's task resolves with the first response, as in Azure
