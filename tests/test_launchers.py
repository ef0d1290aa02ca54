"""segkd's submitit launchers as configs and messages (in-process; the sweeps themselves run in
tests/test_scale_out.py with the local executor and in tests/test_slurm.py against a real Slurm)."""

from __future__ import annotations

import warnings

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from segkd.config import command_line, plugin_launcher_error

from conftest import CONF_DIR


def launcher(name: str, *overrides: str) -> dict:
    GlobalHydra.instance().clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Hydra's schema-matching deprecation would be one
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"hydra/launcher={name}", *overrides], return_hydra_config=True)
    node = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    GlobalHydra.instance().clear()
    return node


def test_the_cpu_preset_is_the_slurm_one_without_gpu_requests():
    gpu, cpu = launcher("slurm"), launcher("slurm_cpu", "hydra.launcher.partition=debug")
    assert gpu["gpus_per_node"] == "${trainer.devices}" and gpu["mem_per_gpu"] == "48G"
    assert cpu["gpus_per_node"] is None and cpu["mem_per_gpu"] is None, "sbatch refuses GPU requests on a CPU partition"
    assert cpu["mem_gb"] == 4 and cpu["cpus_per_task"] == 1 and cpu["partition"] == "debug"
    same = {k for k in gpu if k not in {"gpus_per_node", "mem_per_gpu", "mem_gb", "cpus_per_task", "partition"}}
    assert {k: cpu[k] for k in same} == {k: gpu[k] for k in same}, "everything else is the slurm preset's"
    assert cpu["_target_"].endswith("SegkdSlurmLauncher") and launcher("local")["_target_"].endswith("SegkdLocalLauncher")


@pytest.mark.parametrize("name, use", [("submitit_slurm", "hydra/launcher=slurm_cpu"), ("submitit_local", "hydra/launcher=local")])
def test_the_plugins_own_launchers_are_refused_in_one_line_naming_segkds(name, use, capsys):
    assert use in plugin_launcher_error(["seed=1", f"hydra/launcher={name}"])
    assert plugin_launcher_error(["hydra/launcher=slurm", "seed=1,2"]) is None
    with pytest.raises(SystemExit) as stopped:
        command_line("train", ["segkd.run", "-m", f"hydra/launcher={name}", "seed=1,2"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segkd: error: hydra/launcher=") and use in err[0]


class _Job:
    """What the progress line reads of a submitit job: done() and state."""

    def __init__(self, state: str, done: bool = False) -> None:
        self.state, self._done = state, done

    def done(self) -> bool:
        return self._done


def test_the_progress_line_counts_done_running_pending_and_names_other_states():
    from hydra_plugins.segkd_launcher.launchers import progress_line

    jobs = [_Job("COMPLETED", True), _Job("FAILED", True), _Job("RUNNING"), _Job("PENDING"), _Job("REQUEUED"),
            _Job("NODE_FAIL")]
    assert progress_line(jobs) == ("2/6 done, 1 running, 2 pending, 1 node_fail", False)
    assert progress_line(jobs[:2]) == ("2/2 done", True)


def test_the_search_is_an_extra_and_without_it_kd_search_says_how_to_install_it(monkeypatch):
    import sys
    import tomllib

    from segkd.config import missing_extra_error

    from conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "optuna" not in core and "sqlalchemy" not in core, "the core install pins neither Optuna 2 nor SQLAlchemy < 2"
    assert any(d.startswith("hydra-optuna-sweeper") for d in project["optional-dependencies"]["search"])
    assert "[test,search]" in (ROOT / "Makefile").read_text(), "make install installs the extra the tests use"

    assert missing_extra_error(["+experiment=kd_search", "seed=1"]) is None, "installed here"
    monkeypatch.setitem(sys.modules, "optuna", None)  # what Python reports for a package that is not installed
    message = missing_extra_error(["-m", "+experiment=kd_search"])
    assert message == ("+experiment=kd_search needs segkd's 'search' extra, which is not installed: "
                       "pip install -e '.[search]' (make install installs it)")
    assert "search" in missing_extra_error(["hydra/sweeper=optuna"])
