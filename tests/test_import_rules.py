"""Which segkd package may import which, checked on the source (parsed with ``ast``, nothing imported).

Every ``segkd.*`` import counts: absolute and relative, at the top of a module or inside a function.
docs/ARCHITECTURE.md (section 4) explains the layers these rules keep apart.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

SEGKD_DIR = Path(__file__).resolve().parents[1] / "segkd"

#: The ``python -m segkd.X`` commands. ``segkd.train`` (the training function) is not one of them:
#: ``segkd.run`` is its command.
COMMANDS = ("segkd.run", "segkd.evaluate", "segkd.predict", "segkd.export", "segkd.profile", "segkd.analyze",
            "segkd.bias_variance", "segkd.compare", "segkd.protocol")
_COMMANDS_AND_TRAIN = (*COMMANDS, "segkd.train")

#: Package (or module) -> packages and modules it must not import. A name covers its submodules.
RULES: dict[str, tuple[str, ...]] = {
    "segkd.runtime": ("segkd.systems", "segkd.distill", "segkd.models", "segkd.losses", "segkd.data",
                      "segkd.metrics", "segkd.inference", "segkd.analysis", "segkd.callbacks", "segkd.visual",
                      *_COMMANDS_AND_TRAIN),
    "segkd.distill": ("segkd.inference", "segkd.analysis", "segkd.systems", *_COMMANDS_AND_TRAIN),
    "segkd.metrics": ("segkd.losses", "segkd.distill", "segkd.systems", "segkd.data"),
    "segkd.data": ("segkd.distill", "segkd.systems", "segkd.models", "segkd.losses"),
    "segkd.models": ("segkd.systems", "segkd.distill", "segkd.data", "segkd.losses"),
    "segkd.losses": ("segkd.systems", "segkd.distill", "segkd.data"),
    "segkd.systems": ("segkd.inference", "segkd.analysis", *_COMMANDS_AND_TRAIN),
    "segkd.train": COMMANDS,
    # The libraries the commands are faces of import no command (a lab script may import both).
    "segkd.analysis": _COMMANDS_AND_TRAIN,
    "segkd.inference": _COMMANDS_AND_TRAIN,
    "segkd.recipe": ("segkd.systems", "segkd.distill", "segkd.models", "segkd.data", *_COMMANDS_AND_TRAIN),
    # Shared maths, below every package that uses it.
    "segkd.functional": ("segkd",),
    # How commands report (numbers, tables, figures): it knows no other segkd module.
    "segkd.reporting": ("segkd",),
    # No command imports another: each one's own module is the one name it may import.
    **{command: tuple(other for other in COMMANDS if other != command) for command in COMMANDS},
}

#: Edges (importing module, imported module) that break a rule today and are being paid off: the
#: test reports them and does not fail on them. Remove an entry when its import goes.
KNOWN_DEBTS: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path = SEGKD_DIR) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def segkd_imports(source: str, module: str, is_package: bool = False,
                  known_modules: frozenset[str] = frozenset()) -> set[str]:
    """Every segkd module or package ``module``'s source imports, anywhere in it.

    ``from X import y`` counts as ``X.y`` when that is a module of ``known_modules`` (``from segkd
    import compare``), else as ``X``. Relative imports are resolved against ``module``'s package.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.add(name if name in known_modules else base)
    return {name for name in found if name == "segkd" or name.startswith("segkd.")}


def _covers(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(imports: dict[str, set[str]], rules: dict[str, tuple[str, ...]] = RULES) -> list[tuple[str, str, str]]:
    """(importing module, imported module, the rule's package) for every import a rule forbids."""
    found = []
    for module, targets in sorted(imports.items()):
        for owner, forbidden in rules.items():
            if not _covers(owner, module):
                continue
            for target in sorted(targets):
                hit = next((f for f in forbidden if _covers(f, target) and not _covers(owner, target)), None)
                if hit is not None:
                    found.append((module, target, owner))
    return found


def segkd_import_graph(root: Path = SEGKD_DIR) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    known = frozenset(module_name(path, root) for path in paths) | frozenset(
        module_name(path, root) for path in root.rglob("*") if path.is_dir() and path.name != "__pycache__")
    return {module_name(path, root): segkd_imports(path.read_text(), module_name(path, root),
                                                   path.name == "__init__.py", known)
            for path in paths}


def _listed(edges) -> str:
    return "\n".join(f"  {module} imports {target} (rule of {owner})" for module, target, owner in edges)


def test_no_segkd_package_imports_one_it_must_not():
    graph = segkd_import_graph()
    assert "segkd.runtime.errors" in graph and "segkd.train" in graph, "the source tree was not found"
    found = violations(graph)
    debts = [edge for edge in found if edge[:2] in KNOWN_DEBTS]
    broken = [edge for edge in found if edge[:2] not in KNOWN_DEBTS]
    if debts:
        warnings.warn(f"known import debts ({len(debts)}), still to pay off:\n{_listed(debts)}")
    paid = sorted(KNOWN_DEBTS - {edge[:2] for edge in found})
    assert not paid, f"KNOWN_DEBTS lists imports that are gone; remove them from the list: {paid}"
    assert not broken, f"{len(broken)} import(s) break the rules in RULES:\n{_listed(broken)}"


def test_the_checker_reports_a_forbidden_import_wherever_it_is_written():
    source = (
        "from __future__ import annotations\n"
        "import os\n"
        "from segkd.runtime.errors import users_error\n"  # allowed: the runtime itself
        "from .. import train\n"                          # relative, a module by name: forbidden
        "def later():\n"
        "    from ..systems.base import SystemBase\n"      # relative, inside a function: forbidden
        "    import segkd.data.sampling\n"                 # absolute, inside a function: forbidden
        "    from segkd import config\n"                   # not ruled out
    )
    known = frozenset({"segkd.train", "segkd.config", "segkd.runtime.errors", "segkd.systems.base",
                       "segkd.data.sampling"})
    imports = segkd_imports(source, "segkd.runtime.cluster", known_modules=known)
    assert imports == {"segkd.runtime.errors", "segkd.train", "segkd.systems.base", "segkd.data.sampling",
                       "segkd.config"}
    found = violations({"segkd.runtime.cluster": imports})
    assert found == [("segkd.runtime.cluster", "segkd.data.sampling", "segkd.runtime"),
                     ("segkd.runtime.cluster", "segkd.systems.base", "segkd.runtime"),
                     ("segkd.runtime.cluster", "segkd.train", "segkd.runtime")]
    # A command importing another command is reported; importing its own submodules is not.
    assert violations({"segkd.predict": {"segkd.evaluate", "segkd.inference"}}) == [
        ("segkd.predict", "segkd.evaluate", "segkd.predict")]
    assert violations({"segkd.models.unet": {"segkd.models.checkpoint"}}) == []


def test_the_known_debts_are_edges_of_the_rules():
    """A debt entry names a forbidden edge (not a typo that excuses nothing)."""
    for module, target in KNOWN_DEBTS:
        assert violations({module: {target}}), f"({module!r}, {target!r}) breaks no rule"


def test_no_test_imports_a_lab_script():
    """Lab notebooks and products live apart: tests (and segkd itself) import nothing from experiments/ or
    benchmarks/, by module name or by file path. A script's logic a test needs belongs in segkd; a
    script's output is checked by running it as a process (``subprocess.run([sys.executable, "experiments/x.py"])``)."""
    import re

    folders = ("experiments", "benchmarks")
    names_a_folder = re.compile(r"(^|[/\\.])(experiments|benchmarks)([/\\.]|$)")
    #: Calls that run or import a file's code given its path (a subprocess is not one: it runs the script
    #: as a program, the way its users do).
    loaders = {"spec_from_file_location", "SourceFileLoader", "SourcelessFileLoader", "load_source", "run_path"}
    builtins = {"exec"}  # exec(source read from a file): the builtin only, not re.compile or a method
    by_name = {"import_module", "__import__", "run_module"}

    def found_in(source: str) -> list[str]:
        tree = ast.parse(source)
        mentions = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    and (n.value in folders or names_a_folder.search(n.value.strip()))]
        hits = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                hits += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in folders]
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in folders:
                hits.append(f"line {node.lineno}: from {node.module} import ...")
            elif isinstance(node, ast.Call):
                func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                first = node.args[0] if node.args else None
                if func in by_name and isinstance(first, ast.Constant) and str(first.value).split(".")[0] in folders:
                    hits.append(f"line {node.lineno}: {func}({first.value!r})")
                elif (func in loaders or (func in builtins and isinstance(node.func, ast.Name))) and mentions:  # the path may be built elsewhere in the file
                    hits.append(f"line {node.lineno}: {func}(...) in a file that names "
                                f"{sorted({m.value for m in mentions})[:3]}")
        return hits

    # The scanner itself, on sources that break the rule each in one way, and on the allowed way.
    assert found_in("import experiments.methods_figures")
    assert found_in("from benchmarks.step_time import main")
    assert found_in("import importlib\nm = importlib.import_module('experiments.teacher_softness')")
    assert found_in("import importlib.util as u\nROOT = None\n"
                    "spec = u.spec_from_file_location('x', ROOT / 'experiments' / 'x.py')")
    assert found_in("import runpy\nrunpy.run_path('benchmarks/logging_cost.py')")
    assert found_in("from pathlib import Path\nexec(Path('experiments/grad_balance.py').read_text())")
    assert not found_in("import subprocess, sys\n"
                        "subprocess.run([sys.executable, 'experiments/methods_figures.py', '--out', 'o'])")

    root = Path(__file__).resolve().parents[1]
    sources = sorted((root / "tests").rglob("*.py")) + sorted(SEGKD_DIR.rglob("*.py"))
    assert any(p.name == "conftest.py" for p in sources), "the tests were not found"
    broken = {str(p.relative_to(root)): hits for p in sources if (hits := found_in(p.read_text()))}
    assert not broken, ("these files import or load code of experiments/ or benchmarks/ (move the logic into "
                        f"segkd, or run the script as a process): {broken}")
