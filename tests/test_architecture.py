"""The architecture, read from the code: what a newcomer adding a stage or a tag can rely on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dataeff
from dataeff.runs import tags

PACKAGE = Path(dataeff.__file__).parent
TAG_MODULE = Path(tags.__file__)
TAG_LIKE = re.compile(r"(?:tags\.)?(dataeff\.[a-z_]+)")  # a whole string: a tag or a column of one


def string_constants(path: Path):
    """The module's strings, docstrings aside (they may name a tag)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


RESOLVERS = {"dataeff.cwd", "dataeff.package_dir", "dataeff.cpu_precision"}  # ${dataeff.cwd:} in configs


def test_every_dataeff_tag_name_is_spelled_once_in_runs_tags():
    """A tag renamed in one module and not in another splits a study's runs in two; so every
    `dataeff.*` tag name lives in dataeff/runs/tags.py, and code elsewhere names the constant."""
    constants = [name for name in vars(tags) if name.endswith("_TAG")]
    assert len({getattr(tags, name) for name in constants}) == len(constants), "two constants, one tag"
    spelled = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}"
               for path in sorted(PACKAGE.rglob("*.py")) if path != TAG_MODULE
               for line, text in string_constants(path)
               if (match := TAG_LIKE.fullmatch(text)) and not is_module(match[1])
               and match[1] not in RESOLVERS]
    assert spelled == []


# Lowest first: a module imports only from its own layer or the ones before it. Entry points (the
# app, the CLIs) sit on top of everything.
LAYERS = [
    ("errors", "hf", "overrides", "resolvers", "resources", "tokenizer", "checkpoints", "launch",
     "profiling"),
    ("models",),
    ("augment",),
    ("data",),
    ("tasks", "callbacks", "building"),
    ("runs",),
    ("checks",),
    ("stages",),
    ("report", "audit", "active", "explain"),
    ("recipes", "sweep"),
    ("app", "help"),
]
ENTRY_POINTS = ("dataeff.audit.cli", "dataeff.active.select_cli", "dataeff.runs.cli", "dataeff.explain.cli")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def layer(module: str) -> int:
    if module in ENTRY_POINTS:
        return len(LAYERS)
    part = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if part in names), -1)


def dataeff_imports(path: Path):
    """(line, imported module, inside a function?) for every import of a dataeff module."""
    tree = ast.parse(path.read_text(), str(path))
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(inner) for function in functions for inner in ast.walk(function)}
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            if name == "dataeff" or name.startswith("dataeff."):
                yield node.lineno, name, id(node) in nested


def test_no_dataeff_module_is_imported_inside_a_function():
    """An import hidden in a function hides an arrow of the architecture (and a cycle)."""
    hidden = [f"{module_name(path)}:{line} imports {name}" for path in sorted(PACKAGE.rglob("*.py"))
              for line, name, inside in dataeff_imports(path) if inside]
    assert hidden == []


def test_every_module_has_a_layer_and_imports_only_from_its_own_or_lower_ones():
    """data, models, tasks and augment never import stages, recipes, runs or the app; the MLflow
    run's owner (runs) never imports a stage or a recipe; and so on up (LAYERS)."""
    unplaced = [module_name(path) for path in PACKAGE.rglob("*.py")
                if module_name(path) != "dataeff" and layer(module_name(path)) < 0]
    assert unplaced == []
    upward = [f"{module_name(path)}:{line} imports {name}" for path in sorted(PACKAGE.rglob("*.py"))
              for line, name, _ in dataeff_imports(path)
              if name != "dataeff" and layer(name) > layer(module_name(path))]
    assert upward == []
