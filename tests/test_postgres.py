"""The multi-machine path: ``swin-lit ablate`` drivers (and a submitit job array) share one study in a real
PostgreSQL server (started here on loopback from the Debian server binaries, as an unprivileged user), with
Optuna's own heartbeat as the liveness of running trials."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from helpers.studies import ablate_cmd, age_heartbeat, run_env, slurm_study, starts, worker_logs, write_spec


def _server_bins() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    for initdb in reversed(found):
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").is_file() and (bindir / "createdb").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install -e '.[test]')")
    bindir = _server_bins()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb, pg_ctl); "
                    "install them with: apt-get install -y postgresql (.ci/run does)")
    as_user: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:  # PostgreSQL refuses to run as root
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no unprivileged 'postgres' user to run the server")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and runuser is missing: cannot start PostgreSQL as 'postgres'")
        as_user = [runuser, "-u", "postgres", "--"]
        user = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="swin-lit-pg-"))
    data, log = folder / "data", folder / "server.log"
    if os.getuid() == 0:
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)
    port = _free_port()

    def pg(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120, check=check)

    try:
        pg(str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync")
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o",
           f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off")
    except subprocess.CalledProcessError as err:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {err.stderr or err.stdout}")
    try:
        pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "ablate")
        yield f"postgresql+psycopg2://{user}@127.0.0.1:{port}/ablate"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_machines_share_a_postgres_study(tmp_path, postgres_url):
    import optuna
    from optuna.trial import TrialState

    from swin_lit.ablate.spec import load_plan

    spec = write_spec(tmp_path, "pg", factors={"model.shift": ["cyclic", "none"]}, seeds=[0, 1])
    marker = tmp_path / "marker"
    # Two "machines": separate study folders (run folders), one storage URL.
    outs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    procs = [subprocess.Popen(ablate_cmd(spec, out, "--workers", "1", "--storage", postgres_url),
                              env=run_env(marker), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for out in outs]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join([r[1] for r in results] + [worker_logs(o) for o in outs])
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    ts = study.get_trials(deepcopy=False)
    done = Counter(t.user_attrs["cell"] for t in ts if t.state == TrialState.COMPLETE)
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    assert len(starts(marker)) == 4 and set(starts(marker).values()) == {1}
    assert study.user_attrs["cells"] == load_plan(spec).cell_ids
    assert all(t.user_attrs.get("error", "").startswith("duplicate") or t.user_attrs == {"error": "empty queue"}
               for t in ts if t.state != TrialState.COMPLETE)
    assert {"model.shift", "seed"} == set(next(t for t in ts if t.state == TrialState.COMPLETE).params)


def test_optunas_heartbeat_fails_a_silent_worker_on_postgres(postgres_url):
    """On PostgreSQL the liveness is Optuna's heartbeat table: a claimed trial whose worker stops beating is
    failed by optuna.storages.fail_stale_trials and its cell re-queued (no heartbeat in the user attrs)."""

    from swin_lit import study as contract
    from swin_lit.ablate import store
    from swin_lit.domain.spec import Spec

    spec = {"name": "hb", "variants": {"a": {}}, "seeds": [0]}
    ref1 = store.create_study(store.open_storage(postgres_url, grace=1), "hb", "maximize", spec, ["a|seed=0"], 1)
    ref2 = store.find_study(store.open_storage(postgres_url, grace=1), "hb", 1)
    store.add_waiting(ref1.study, {"kind": "train", "cell": "a|seed=0", "variant": "a", "seed": 0},
                      {"variant": "a", "seed": 0}, Spec.from_stored(spec).param_distributions())
    t = store.claim(ref1)
    t.set_user_attr("worker", {"host": "elsewhere", "pid": 1})  # not this host: only the heartbeat tells
    assert store.reap_stale(ref2) == []
    age_heartbeat(ref1.opened.storage, t)  # its worker silent for years, in Optuna's own heartbeat table
    assert store.reap_stale(ref2) == [t.number]
    states = sorted((x.number, x.state.name, contract.error_of(x)) for x in ref2.trials())
    assert states == [(0, "FAIL", "worker died"), (1, "WAITING", None)]
    assert not store.beat(ref1, t)
    assert all(set(x.user_attrs) <= {"kind", "cell", "variant", "seed", "worker"} for x in ref2.trials())


@pytest.mark.slow
def test_slurm_array_via_submitit_on_postgres(tmp_path, postgres_url):
    import optuna
    from optuna.trial import TrialState

    from swin_lit.ablate.spec import load_plan

    spec, _ = slurm_study(tmp_path, "slpg", "--storage", postgres_url)
    ts = optuna.load_study(study_name="slpg", storage=postgres_url).get_trials(deepcopy=False)
    done = Counter(t.user_attrs["cell"] for t in ts if t.state == TrialState.COMPLETE)
    assert sorted(done) == sorted(load_plan(spec).cell_ids) and set(done.values()) == {1}
    assert len(starts(tmp_path / "marker")) == 4 and set(starts(tmp_path / "marker").values()) == {1}
