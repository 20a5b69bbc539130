"""The layers of docs/architecture.md, checked on the source: which package may import which.

An import scan (``ast``, nothing is executed), so a rule broken anywhere — even in a function body or
under ``TYPE_CHECKING`` — fails here with the module and the line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / 'crm'

UI = ('nicegui', 'fastapi', 'starlette', 'uvicorn')
DATABASE = ('sqlalchemy', 'alembic', 'psycopg', 'crm.db')
BROKER = ('pika',)

# layer (a module prefix) -> what it must not import (prefixes)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    'crm.domain': (
        *UI,
        *DATABASE,
        *BROKER,
        'httpx',
        'crm.config',
        'crm.services',
        'crm.integrations',
        'crm.pages',
        'crm.api',
        'crm.bootstrap',
    ),
    'crm.config': (
        *UI,
        *DATABASE,
        *BROKER,
        'crm.services',
        'crm.integrations',
        'crm.pages',
        'crm.api',
        'crm.bootstrap',
    ),
    'crm.db': (*UI, *BROKER, 'crm.services', 'crm.integrations', 'crm.pages', 'crm.api', 'crm.bootstrap'),
    'crm.integrations': (*UI, *DATABASE, 'crm.services', 'crm.pages', 'crm.api', 'crm.bootstrap'),
    'crm.services': (*UI, 'crm.pages', 'crm.api', 'crm.bootstrap'),
    'crm.pages': (*DATABASE, *BROKER),
    'crm.api': (*DATABASE, *BROKER, 'nicegui', 'crm.pages'),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit('.', 1)[0] if path.name != '__init__.py' else module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from crm import db` imports the module crm.db
                yield node.lineno, f'{base}.{alias.name}'


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob('*.py'))


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + '.')


def test_the_scan_sees_every_module() -> None:
    names = {module_name(p) for p in modules()}
    for layer in FORBIDDEN:
        assert any(within(n, layer) for n in names), layer


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    broken = [
        f'{module_name(path)}:{line} imports {name}'
        for path in modules()
        if within(module_name(path), layer)
        for line, name in imports(path)
        if any(within(name, banned) for banned in FORBIDDEN[layer])
    ]
    assert broken == []


def test_no_import_cycles_between_modules() -> None:
    """A cycle ties two modules into one (the call panel and the workspace used to be one)."""
    names = {module_name(p): p for p in modules()}
    graph = {
        name: {target for _, target in imports(path) if target in names and target != name}
        for name, path in names.items()
    }
    # a package's own __init__ importing its submodules is not a cycle of theirs
    for name in graph:
        graph[name] = {t for t in graph[name] if not within(t, name) and not within(name, t)}
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for target in graph[node]:
                if target == start:
                    cycles.append(' -> '.join([*path, start]))
                elif target not in path and target > start:  # each cycle once, from its least module
                    stack.append((target, [*path, target]))
    assert cycles == []
