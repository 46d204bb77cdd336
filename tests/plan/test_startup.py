"""`personas plan` on a SQLite store starts without the heavy libraries of other commands."""

from __future__ import annotations

import subprocess
import sys

from .conftest import PROJECT_FILE, Project

HEAVY = ("sqlalchemy", "alembic", "duckdb", "httpx", "redis", "deepdiff", "jsonschema", "psycopg")

TRAIT = """
apiVersion: personas/v1
kind: Trait
metadata: {name: orders}
spec: {type: event_counter, event: Order Completed, window: 30d}
"""

AUDIENCE = """
apiVersion: personas/v1
kind: Audience
metadata: {name: buyers}
spec:
  include: {trait: orders, gt: 0}
"""


def plan_imports(project: Project) -> list[str]:
    """Run `personas plan` in a fresh interpreter; the last line of its output lists the heavy modules it imported."""
    code = (
        "import sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main(['--project', {str(project.root)!r}, 'plan', '--no-color'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('heavy:', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {"PATH": "/usr/bin:/bin", **project.env()}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.splitlines()


def test_plan_on_sqlite_imports_no_heavy_module(tmp_path):
    project = Project(tmp_path / "project", f"sqlite:///{tmp_path / 'state.db'}")
    project.write("personas.yaml", PROJECT_FILE)
    project.write("traits/orders.yaml", TRAIT)
    project.write("audiences/buyers.yaml", AUDIENCE)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.remove("audiences/buyers.yaml")
    project.write("traits/orders.yaml", TRAIT.replace("30d", "60d"))

    lines = plan_imports(project)

    assert lines[-2:] == ["Plan: 0 to create, 1 to update, 0 to replace, 1 to delete, 0 to move.", "heavy: []"]
