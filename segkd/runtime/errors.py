"""Errors a user can act on, shown as one line instead of 30-90 lines of traceback.

segkd's own checks (bad data, config, checkpoints, hook paths) already write messages that say what
is wrong and how to fix it; the traceback around them only buries that line. An error is segkd's own
when segkd code raised it, wherever it travelled since: Hydra wraps errors raised while it
instantiates a config node (nested for nested nodes), so the chain is searched. Anything raised
elsewhere (a library, a bug) keeps its full traceback. ``SEGKD_DEBUG=1`` (or Hydra's
``HYDRA_FULL_ERROR=1``) shows the traceback of every error.
"""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

#: Either variable set to a non-empty value other than 0 shows full tracebacks.
DEBUG_ENV = ("SEGKD_DEBUG", "HYDRA_FULL_ERROR")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # segkd/ (this file is segkd/runtime/errors.py)


def debugging() -> bool:
    return any(os.environ.get(name, "") not in ("", "0") for name in DEBUG_ENV)


def _raised_in_segkd(err: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is segkd code, or the error is of one of
    segkd's own error types (a user's dataset class or loss raising ``DatasetError`` speaks for segkd too)."""
    if _is_segkd_type(err):
        return True
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE_DIR)


def _is_segkd_type(err: BaseException) -> bool:
    module = type(err).__module__ or ""
    return module == "segkd" or module.startswith("segkd.")


#: Writing failed for a reason of the place, not of the code: a user fixes these by choosing another one.
_PLACE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is used up",
                 errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                 errno.EROFS: "a read-only file system"}


class PlaceError(OSError):
    """A file segkd had to write could not be written where it was asked to be."""


def place_error(err: BaseException) -> Optional[PlaceError]:
    """An OSError of the place (full disk, read-only folder, no permission) anywhere in the chain, as one
    line naming the path, what was wrong and the free space there; None when there is none."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        found = _errno_of(err)
        if found is not None:
            code, filename = found
            where = Path(filename) if filename else None
            text = f"cannot write {where}: {_PLACE_ERRNOS[code]}" if where else f"cannot write: {_PLACE_ERRNOS[code]}"
            free = _free_space(where)
            if code in (errno.ENOSPC, errno.EDQUOT) and free is not None:
                needed = _checkpoint_size(where)
                text += f" ({free} free there" + (f"; a checkpoint there takes {needed}" if needed else "") + ")"
            text += "; free some space or write elsewhere" if code in (errno.ENOSPC, errno.EDQUOT) else \
                "; choose a folder you can write to"
            return PlaceError(f"{text} (e.g. hydra.run.dir=..., output_dir=..., output=...)")
        err = err.__cause__ or err.__context__
    return None


def _errno_of(err: BaseException) -> Optional[tuple[int, Optional[str]]]:
    if isinstance(err, OSError) and err.errno in _PLACE_ERRNOS:
        return err.errno, err.filename
    if isinstance(err, RuntimeError) and "No space left on device" in str(err):  # torch.save's C++ writer
        return errno.ENOSPC, None
    return None


def _checkpoint_size(path: Optional[Path]) -> Optional[str]:
    """The size of the largest checkpoint beside ``path`` (what a save there needs), if any."""
    if path is None:
        return None
    try:
        sizes = [p.stat().st_size for p in path.parent.glob("*.ckpt") if p.is_file()]
    except OSError:
        return None
    return _size(max(sizes)) if sizes else None


def _size(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _free_space(path: Optional[Path]) -> Optional[str]:
    import shutil

    probe = path
    while probe is not None and not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe if probe is not None else ".").free
    except OSError:
        return None
    return _size(free)


def users_error(err: BaseException) -> Optional[BaseException]:
    """The error segkd raised for the user somewhere in ``err``'s chain of causes, or None."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, Exception) and _raised_in_segkd(err):
            return err  # the outermost: segkd's message, with whatever it added to a cause it wraps
        err = err.__cause__ or err.__context__
    return None


def one_line(err: BaseException) -> str:
    """The error's message on one line (multi-line messages are joined)."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    return text or type(err).__name__


@contextmanager
def errors_in_one_line(prog: str = "segkd") -> Iterator[None]:
    """Turn segkd's own errors into one line on stderr and exit status 1; re-raise everything else."""
    try:
        yield
    except Exception as err:
        found = None if debugging() else (users_error(err) or place_error(err))
        if found is None:
            raise
        print(f"{prog}: error: {one_line(found)} (SEGKD_DEBUG=1 shows the traceback)", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
