"""Twenty applies at once against one PostgreSQL state: one writes, the others find nothing left or a moved serial.

Each process imports personas and its database drivers, about a CPU-second
apiece, so on two cores these tests take from ten seconds to a minute.
"""

from __future__ import annotations

import pytest

from .conftest import Project

PROCESSES = 20

TRAIT = """
apiVersion: personas/v1
kind: Trait
metadata: {{name: orders}}
spec: {{type: event_counter, event: Order Completed, window: {window}}}
"""


@pytest.fixture
def pg_project(tmp_path, postgres_url) -> Project:
    project = Project(tmp_path, postgres_url)
    project.write("personas.yaml", "version: 1\nname: shop\nstate: ${PERSONAS_STATE_URL}\n")
    project.write("traits/orders.yaml", TRAIT.format(window="30d"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("traits/orders.yaml", TRAIT.format(window="45d"))
    return project


def run_all(project: Project, *args: str) -> list[tuple[int, str, str]]:
    processes = [project.spawn(*args) for _ in range(PROCESSES)]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        results.append((process.returncode, stdout, stderr))
    return results


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_applies_write_the_change_once(pg_project):
    results = run_all(pg_project, "apply", "--auto-approve", "--lock-timeout", "60s")

    assert [code for code, _, _ in results] == [0] * PROCESSES, [err for _, _, err in results if err]
    applied = [out for _, out, _ in results if "Apply complete" in out]
    nothing = [out for _, out, _ in results if out == "No changes. The applied state matches the specs; nothing to apply.\n"]
    assert (len(applied), len(nothing)) == (1, PROCESSES - 1)
    store = pg_project.store()
    try:
        log = store.audit_log()
        serial = store.read().serial
    finally:
        store.close()
    assert serial == 2
    assert sorted((entry.serial_before, entry.serial_after) for entry in log) == [(0, 1), (1, 2)]


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_applies_of_one_saved_plan_succeed_once(pg_project):
    planfile = pg_project.root / "plan.json"
    assert pg_project.run("plan", "--out", str(planfile)).exit_code == 0

    results = run_all(pg_project, "apply", "--auto-approve", "--lock-timeout", "60s", str(planfile))

    codes = sorted(code for code, _, _ in results)
    assert codes == [0] + [1] * (PROCESSES - 1)
    rejections = [err for code, _, err in results if code == 1]
    expected = (
        "Error: the saved plan is stale: it was made at state serial 1, and the state is now at serial 2 "
        "(someone applied in between)\n"
        "Make a new plan and review it: `personas plan --out FILE`.\n"
    )
    assert rejections == [expected] * (PROCESSES - 1)
    store = pg_project.store()
    try:
        assert store.read().serial == 2
        assert len(store.audit_log()) == 2
    finally:
        store.close()
