"""python -m tests.fakedagu --port 8080 --version 2.6.5 --dags examples/demo-dags.yaml

Prints `ready http://127.0.0.1:PORT[basePath]` once listening; runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import List, Optional

from .server import FakeDagu
from .yamlspec import SpecError, load_dags


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakedagu", description="Serve a fake Dagu API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--version", default="2.6.5", help="version string to report, e.g. 1.30.3 or dev")
    parser.add_argument("--flavor", choices=["v2x", "v1x"], help="where a dev build mounts its API")
    parser.add_argument("--base-path", default="")
    parser.add_argument("--dags", action="append", default=[], help="YAML file of DAGs (repeatable)")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD")
    parser.add_argument("--token")
    parser.add_argument("--queue-delay", type=float, default=1.0)
    args = parser.parse_args(argv)

    auth = None
    if args.basic_auth:
        user, _, password = args.basic_auth.partition(":")
        auth = ("basic", user, password)
    elif args.token:
        auth = ("token", args.token)
    try:
        dags = [dag for path in args.dags for dag in load_dags(path)]
        server = FakeDagu(
            version=args.version,
            auth=auth,
            base_path=args.base_path,
            flavor=args.flavor,
            host=args.host,
            port=args.port,
            queue_delay=args.queue_delay,
        )
    except (OSError, SpecError, ValueError) as exc:
        print(f"fakedagu: {exc}", file=sys.stderr)
        return 2
    for dag in dags:
        server.add_dag(dag)

    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        server.start()
    except OSError as exc:
        print(f"fakedagu: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"ready {server.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
