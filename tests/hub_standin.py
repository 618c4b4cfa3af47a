"""A stand-in for the Hugging Face Hub's HTTP API on a loopback port, for push_to_hub's tests.

It answers the calls huggingface_hub makes to log in, create a model repo, read its info, check
a README's metadata and commit files (every file "regular", sent whole in the commit), keeps what it was sent in memory,
and can be told to refuse a commit. Point huggingface_hub at it with HF_ENDPOINT.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "hf_standin_token"
USER = "me"


@dataclass
class Repo:
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: int = 0


@dataclass
class Hub:
    """What the stand-in holds: repos by id, and whether the next commit is refused."""

    repos: dict[str, Repo] = field(default_factory=dict)
    refuse_commits: bool = False
    url: str = ""


def serve() -> tuple[Hub, ThreadingHTTPServer]:
    """Start the stand-in on a free loopback port in a thread; returns its state and server."""
    hub = Hub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict | None = None) -> None:
            data = json.dumps(body or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self._send(401, {"error": "Invalid credentials in Authorization header"})
            return False

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not self._authorised():
                return
            path = self.path.split("?")[0]
            if path == "/api/whoami-v2":
                return self._send(200, {"type": "user", "name": USER, "auth": {}})
            if path.startswith("/api/models/"):
                repo_id = "/".join(path.split("/")[3:5])
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._send(404, {"error": "Repository not found"})
                siblings = [{"rfilename": name} for name in repo.files]
                info = {"id": repo_id, "private": repo.private, "sha": f"{repo.commits:040x}"}
                return self._send(200, {**info, "siblings": siblings})
            self._send(404, {"error": f"no such endpoint {path}"})

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            path, body = self.path.split("?")[0], self._body()
            if path == "/api/repos/create":
                asked = json.loads(body)
                repo_id = f"{asked.get('organization') or USER}/{asked['name']}"
                url = f"{hub.url}/{repo_id}"
                if repo_id in hub.repos:  # as the Hub: a conflict, with the repo's URL
                    return self._send(409, {"error": "You already created this repo", "url": url})
                private = asked.get("visibility", "private" if asked.get("private") else "public")
                hub.repos[repo_id] = Repo(private=private == "private")
                return self._send(200, {"url": url, "name": repo_id})
            if path == "/api/validate-yaml":  # a README's metadata block: accepted as it is
                return self._send(200, {"errors": [], "warnings": []})
            parts = path.split("/")
            repo_id, action = "/".join(parts[3:5]), parts[5] if len(parts) > 5 else ""
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._send(404, {"error": "Repository not found"})
            if action == "preupload":
                modes = [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in json.loads(body)["files"]
                ]
                return self._send(200, {"files": modes})
            if action == "commit":
                if hub.refuse_commits:
                    return self._send(403, {"error": "The stand-in refuses this commit"})
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        value = item["value"]
                        repo.files[value["path"]] = base64.b64decode(value["content"])
                repo.commits += 1
                oid = f"{repo.commits:040x}"
                return self._send(
                    200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid}
                )
            self._send(404, {"error": f"no such endpoint {path}"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hub, server
