"""`make demo`: start the project's fake Dagu server with an example DAG, then run it.

You see what a CI job would show: streamed step logs, a summary, the exit code.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def main() -> int:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakedagu",
            "--port",
            "0",
            "--dags",
            os.path.join(ROOT, "examples", "demo-dags.yaml"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("ready "):
            print(f"demo: the fake Dagu server did not start ({line!r})", file=sys.stderr)
            return 1
        url = line.split(" ", 1)[1]
        command = [os.path.join(BIN, "dagu-ci"), "run", "deploy", "--url", url, "--param", "VERSION=1.2.3"]
        print(f"$ {' '.join(command[0:1] and ['dagu-ci'] + command[1:])}", flush=True)
        code = subprocess.call(command)
        print(f"\n(exit code {code})")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
