"""nginx (Debian's) as a round-robin load balancer on loopback, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from governd.server.launcher import free_port, stop
from governd.testing.listening import wait_listening

_CONF = """daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_processes 1;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream governd {{
{servers}
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://governd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }}
  }}
}}
"""


@contextlib.contextmanager
def nginx_balancer(folder: Path, backends: Sequence[str]) -> Iterator[str]:
    """nginx round-robin over ``backends`` (``host:port``); yields its URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"    server {b};" for b in backends)
    conf = folder / "nginx.conf"
    conf.write_text(_CONF.format(dir=folder, servers=servers, port=port))
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        errors = folder / "error.log"
        wait_listening(
            proc,
            port,
            lambda: f"nginx did not start: {errors.read_text() if errors.exists() else ''}",
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
