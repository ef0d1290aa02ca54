"""Small bridges between Hydra's config objects and what libraries and checkpoints accept."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

#: The config folder shipped with the repository (conf/ beside the package).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# ${basename:/a/b/c} -> c: names a cache folder after the data it belongs to (conf/train.yaml).
OmegaConf.register_new_resolver("basename", lambda path: Path(str(path)).name, replace=True)

#: This process's run id: its start time to the second plus a random suffix, so that two runs (or two
#: sweeps) started in the same second never share an output dir. One value per process: every job of
#: a sweep shares its sweep's dir, and DDP ranks > 0 are handed their job's dir (segkd.runtime.processes).
RUN_ID = f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(2)}"
OmegaConf.register_new_resolver("run_id", lambda: RUN_ID, replace=True)


def to_plain(value: Any) -> Any:
    """Resolve a DictConfig/ListConfig into plain dicts and lists.

    Checkpoints are loaded with ``weights_only=True`` (torch >= 2.6), which refuses OmegaConf objects,
    and many libraries type-check for list/dict.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def plain_hparams(module: Any) -> None:
    """Make a LightningModule's saved hyperparameters plain Python (subclass init args included)."""
    for key in list(module.hparams):
        module.hparams[key] = to_plain(module.hparams[key])


def compose_train_config(overrides: list[str], output_dir: str | Path, config_dir: str | Path | None = None) -> DictConfig:
    """The primary config as ``python -m segkd.run`` would build it, for tests and scripts.

    Hydra's runtime values (output dir, cwd, group choices) are set as in a real run, so every
    ``${hydra:...}`` interpolation resolves; the hydra node itself is removed, as a task never sees it.
    """
    return compose_config("train", overrides, output_dir, config_dir)


def compose_config(
    config_name: str, overrides: list[str], output_dir: str | Path, config_dir: str | Path | None = None
) -> DictConfig:
    """Any primary config (``train``, ``evaluate``, ``predict``) as its command would build it: see
    :func:`compose_train_config`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(Path(config_dir or CONF_DIR).resolve()), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = os.getcwd()
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, but an error segkd raised for the user surfaces as itself.

    Hydra wraps every exception in an InstantiationException with a framework preamble, once per
    nested node; the messages segkd writes (bad dataset root, unknown encoder, teacher mismatch,
    unknown hook path) are meant to be the one line a user reads, so they are re-raised unwrapped
    (segkd.runtime.errors finds them at any depth). Errors from elsewhere keep Hydra's wrapping.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from segkd.runtime.errors import users_error

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        found = users_error(err)
        if found is not None:
            raise found from None  # its traceback still ends where segkd raised it
        raise


#: Keys whose values are paths (a value with "/" is taken as one whatever its key).
_PATH_KEYS = ("path", "ckpt", "root", "dir", "output", "input")


def quote_path_values(argv: list[str]) -> list[str]:
    """Command-line overrides whose value holds an ``=`` quoted for Hydra's override grammar, which reads
    ``ckpt_path=.../epoch=0-step=2.ckpt`` (the name Lightning gives its checkpoints) as a second ``=``
    and stops with "mismatched input '='". Only paths are quoted (a value with ``/``, or of a key named
    like a path); a value already quoted, a Hydra sweep or function (``a,b``, ``choice(...)``) and
    flags (``-m``, ``--cfg job``) are left as they are."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        plain_key = key.lstrip("+~")
        path_like = "/" in value or plain_key.rsplit(".", 1)[-1].endswith(_PATH_KEYS)
        if (sep and "=" in value and path_like and not arg.startswith("-") and plain_key and "/" not in plain_key
                and value[:1] not in ("'", '"') and "(" not in value and "," not in value):
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            arg = key + sep + value
        out.append(arg)
    return out


def command_line(config_name: str, argv: list[str]) -> list[str]:
    """What a ``python -m segkd.X`` command hands Hydra: values holding ``=`` quoted
    (:func:`quote_path_values`), and a single run's overrides composed first, so that Hydra's own
    config errors (an unknown group option or key, the override grammar) end in one ``segkd: error:``
    line that keeps Hydra's suggestions, instead of several lines. A sweep (``-m``) and Hydra's flags
    (``--cfg``, ``--help``, ...) go to Hydra as typed, once they do not name the plugin's launchers
    (:func:`plugin_launcher_error`)."""
    import sys

    argv = quote_path_values(argv)
    message = plugin_launcher_error(argv[1:]) or missing_extra_error(argv[1:])
    if message is None and any(a.startswith("-") for a in argv[1:]):
        return argv
    message = message or override_error(config_name, argv[1:]) or unwritable_run_dir(argv[1:])
    if message is not None:
        print(f"segkd: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(1)
    return argv


#: The submitit plugin's own launcher configs -> segkd's (conf/hydra/launcher/).
PLUGIN_LAUNCHERS = {"submitit_slurm": "slurm (GPU partitions) or hydra/launcher=slurm_cpu (CPU partitions)",
                    "submitit_local": "local"}


def plugin_launcher_error(overrides: list[str]) -> "str | None":
    """The plugin's launchers would run without segkd's (a sweep dir per process, data made by every job,
    no job ids shown): refused in one line naming segkd's."""
    for override in overrides:
        name = override.partition("=")[2] if override.lstrip("+~").startswith("hydra/launcher=") else None
        if name in PLUGIN_LAUNCHERS:
            return (f"hydra/launcher={name} is the submitit plugin's launcher, without segkd's (one sweep dir for "
                    f"every process, the data prepared once, the jobs' ids and states shown); use "
                    f"hydra/launcher={PLUGIN_LAUNCHERS[name]}")
    return None


#: Overrides (without a leading + or ~) that need an optional extra -> (the module it installs, the extra).
EXTRAS = {"experiment=kd_search": ("optuna", "search"), "hydra/sweeper=optuna": ("optuna", "search")}


def missing_extra_error(overrides: list[str]) -> "str | None":
    """An override whose packages are an extra that is not installed, in one line saying how to install it."""
    import importlib.util

    for override in overrides:
        needs = EXTRAS.get(override.lstrip("+~"))
        if needs and importlib.util.find_spec(needs[0]) is None:
            return (f"{override} needs segkd's '{needs[1]}' extra, which is not installed: "
                    f"pip install -e '.[{needs[1]}]' (make install installs it)")
    return None


def override_error(config_name: str, overrides: list[str]) -> "str | None":
    """Hydra's error for these overrides on one line (None when they compose)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        compose_config(config_name, overrides, Path.cwd() / "outputs" / ".check")
    except (HydraException, OmegaConfBaseException) as err:
        lines = [line.strip() for line in str(err).split("Config search path:")[0].splitlines() if line.strip()]
        text = "; ".join(line.rstrip(";") for line in lines) or type(err).__name__
        return re.sub(r"Available options in '([^']+)':;", r"available options in '\1':", text)
    return None


def unwritable_run_dir(overrides: list[str]) -> "str | None":
    """A ``hydra.run.dir`` the run cannot write, as one line (Hydra would create it and fail with its
    own report before segkd runs); None when it can be written or is not given."""
    from segkd.runtime.errors import place_error

    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+~") == "hydra.run.dir" and value:
            run_dir = Path(value.strip("'\"")).expanduser()
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
                probe = run_dir / f".segkd-write-probe-{os.getpid()}"
                probe.touch()
                probe.unlink()
            except OSError as err:
                if err.filename is None:
                    err.filename = str(run_dir)
                found = place_error(err)
                return str(found) if found is not None else f"cannot write {run_dir}: {err.strerror or err}"
    return None
