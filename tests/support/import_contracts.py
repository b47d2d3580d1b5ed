"""A custom import-linter contract: ``stdlib_only`` (registered in pyproject.toml).

import-linter's own contracts forbid listed modules; the shared kit's rule is an allow-list:
it may import the standard library and itself, nothing else -- whatever a later dependency is
called. The import graph holds every module a source module imports (external ones squashed to
their top-level name); anything that is not in ``sys.stdlib_module_names`` and not inside the
contract's own packages breaks the contract.
"""

from __future__ import annotations

import sys
from typing import Any

from importlinter import Contract, ContractCheck, fields, output

__all__ = ["StdlibOnlyContract"]


class StdlibOnlyContract(Contract):
    """``source_modules`` (and their submodules) import only the standard library and each
    other."""

    type_name = "stdlib_only"
    source_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        sources = [m.name for m in self.source_modules]  # type: ignore[attr-defined]
        inside = set()
        for source in sources:
            inside |= {source, *graph.find_descendants(source)}
        broken = []
        for module in sorted(inside):
            for imported in sorted(graph.find_modules_directly_imported_by(module)):
                top = imported.split(".")[0]
                if imported in inside or top in sys.stdlib_module_names:
                    continue
                if any(imported == s or imported.startswith(s + ".") for s in sources):
                    continue
                broken.append((module, imported))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, imported in check.metadata["broken"]:
            output.print_error(f"{module} imports {imported}, which is not the standard library")
            output.new_line()
