"""A local HTTP server on 127.0.0.1 that answers like the Hugging Face Hub's resolve endpoint.

GET/HEAD /{repo}/resolve/{revision}/{path} with the headers huggingface_hub needs (X-Repo-Commit, ETag,
Content-Length), Range requests answered with 206, and a switch to cut the first transfer halfway.
Plain files are served at /files/{name} for "url" sources.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}  # "repo/path" or "files/name" -> content
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut_next_transfers = 0  # how many GETs to cut off halfway
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body: bool):
                server.requests.append((self.command, self.path, self.headers.get("Range")))
                content = server.files.get(server.key(self.path))
                if content is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                ranged = self.headers.get("Range")
                if ranged and body:
                    start = int(ranged.split("=")[1].split("-")[0])
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
                self.send_header("Content-Length", str(len(content) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
                self.end_headers()
                if not body:
                    return
                if server.cut_next_transfers > 0 and not start:
                    server.cut_next_transfers -= 1
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.connection.close()  # the client sees a connection cut mid-transfer
                    return
                self.wfile.write(content[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def key(path: str) -> str:
        path = path.split("?")[0].lstrip("/")
        if path.startswith("files/"):
            return path
        repo_and_rest = path.split("/resolve/", 1)
        if len(repo_and_rest) != 2:
            return ""
        repo, rest = repo_and_rest
        return f"{repo}/{rest.split('/', 1)[1]}"  # drop the revision

    def gets(self) -> list:
        return [r for r in self.requests if r[0] == "GET"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
