"""The import rules that keep the layout's layers apart (README "Layout").

- `shared` never imports `web` or `workers` (every process uses it; it knows none of them);
- `web` and `workers` never import each other (the web process is never gevent-patched, and the
  workers never load Flask);
- `shared.stores` and `shared.metrics` never import each other, not even through another module
  (a store stays usable from the CLI without the metrics directory; the metrics layer knows no
  store); neither `shared.stores` nor `shared.mail` imports `shared.runtime`, and `shared.mail`
  never imports `shared.metrics`.

Every `import` and `from ... import` in the product's modules counts, those inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "web", "workers")
# (importer prefix, imported prefix, transitive?) pairs that must not occur.
FORBIDDEN = (
    ("shared", "web", False),
    ("shared", "workers", False),
    ("web", "workers", False),
    ("workers", "web", False),
    ("shared.stores", "shared.metrics", True),
    ("shared.metrics", "shared.stores", True),
    ("shared.stores", "shared.runtime", True),  # a store knows nothing of how processes run
    ("shared.mail", "shared.metrics", True),  # nor does mail: the web and the workers count
    ("shared.mail", "shared.runtime", True),
)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the product's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that `name` (a dotted import target) lies in, or None."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that importing `module` loads directly (parent packages included)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            found = _resolve(name, modules)
            while found:  # importing a.b.c runs a/__init__ and a/b/__init__ as well
                targets.add(found)
                found = _resolve(found.rpartition(".")[0], modules)
    targets.discard(module)
    return targets


def violations(root: Path) -> list[str]:
    modules = project_modules(root)
    direct = {m: imports_of(m, p, modules) for m, p in modules.items()}
    reach: dict[str, set[str]] = {}

    def reachable(module: str) -> set[str]:
        if module not in reach:
            seen, todo = set(), list(direct[module])
            while todo:
                m = todo.pop()
                if m not in seen:
                    seen.add(m)
                    todo.extend(direct[m])
            reach[module] = seen
        return reach[module]

    found = []
    for module in modules:
        for importer, imported, transitive in FORBIDDEN:
            if not _under(module, importer):
                continue
            for target in sorted(reachable(module) if transitive else direct[module]):
                if _under(target, imported):
                    how = "through its imports" if target not in direct[module] else "directly"
                    found.append(f"{module} imports {target} ({how}): {importer} must not import {imported}")
    return found


def test_the_product_keeps_its_layers():
    assert violations(ROOT) == []


def test_every_module_is_seen():
    modules = project_modules(ROOT)
    expected = {"shared.stores.accounts", "shared.metrics.definitions", "web.app", "workers.imap.worker"}
    assert expected <= set(modules)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_direct_import_across_layers_is_found(tmp_path):
    root = _tree(tmp_path, {"shared/cli.py": "def f():\n    from web.app import create_app\n",
                            "web/app.py": "create_app = None\n",
                            "workers/run.py": "from web import app\n"})
    assert violations(root) == [
        "shared.cli imports web (directly): shared must not import web",
        "shared.cli imports web.app (directly): shared must not import web",
        "workers.run imports web (directly): workers must not import web",
        "workers.run imports web.app (directly): workers must not import web",
    ]


def test_a_store_reaching_the_metrics_through_another_module_is_found(tmp_path):
    root = _tree(tmp_path, {"shared/stores/__init__.py": "", "shared/metrics/__init__.py": "",
                            "shared/stores/settings.py": "from ..events import EVENTS\n",
                            "shared/events.py": "from .metrics import definitions as metrics\nEVENTS = ()\n",
                            "shared/metrics/definitions.py": ""})
    assert violations(root) == [
        "shared.stores.settings imports shared.metrics (through its imports): "
        "shared.stores must not import shared.metrics",
        "shared.stores.settings imports shared.metrics.definitions (through its imports): "
        "shared.stores must not import shared.metrics",
    ]
