"""Run sync passes of an existing workspace in their own processes, under the run lock.

    python -m tests.destinations.sync_worker PROJECT_DIR RUN_ID
        one pass, then exit; prints "ready" once it holds the run lock.
    python -m tests.destinations.sync_worker PROJECT_DIR --fork-server
        import everything once, then for each RUN_ID read on stdin fork a
        process that runs one pass; prints "<pid>" when it starts and
        "done <pid> <status>" when it ends, so a test can SIGKILL it at any
        point of the pass without paying for the imports each time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.destinations.harness import Workspace


def _warm_up() -> None:
    """Import what a pass needs first, so a kill lands inside the pass itself."""
    import duckdb  # noqa: F401
    import duckdb_engine  # noqa: F401
    import httpx  # noqa: F401

    import reconciler.destinations.planning  # noqa: F401
    import reconciler.destinations.sync  # noqa: F401
    import reconciler.destinations.webhook  # noqa: F401
    import reconciler.engine.warehouse  # noqa: F401
    import reconciler.project  # noqa: F401
    import reconciler.spec.models  # noqa: F401
    import reconciler.state.store  # noqa: F401


def run_pass(root: Path, run_id: str) -> None:
    workspace = Workspace(root, create=False)
    store = workspace.store()
    try:
        with store.lock(name="run", operation="run", timeout=60):
            print("ready", flush=True)
            records = workspace.sync(run_id=run_id)
    finally:
        store.close()
    for record in records:
        print(record.audience, record.destination, record.status, record.sent, record.acknowledged, flush=True)


def fork_server(root: Path) -> None:
    for line in sys.stdin:
        run_id = line.strip()
        if not run_id:
            continue
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            code = 1
            try:
                run_pass(root, run_id)
                code = 0
            finally:
                os._exit(code)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"done {pid} {status}", flush=True)


def main() -> None:
    _warm_up()
    root = Path(sys.argv[1])
    if sys.argv[2] == "--fork-server":
        fork_server(root)
    else:
        run_pass(root, sys.argv[2])


if __name__ == "__main__":
    main()
