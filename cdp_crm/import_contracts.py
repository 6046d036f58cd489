"""The "front doors" import-linter contract, registered in pyproject.toml ([tool.importlinter]).

Another app may import only an app's front doors: `<app>.models`, `<app>.services`,
`<app>.selectors`, `<app>.permissions` and their submodules (`pipeline.services.activities`). Its
views, forms, api, urls, tasks and helper modules are its own. import-linter has no built-in
contract for "only these submodules": a `forbidden` contract per app would list each app's private
modules, and a module added later would be public until someone listed it; this one is an allow-list.
Only direct imports count (views may reach another app's tables through its services).
Named exceptions go in `ignore_imports`, each with its reason; a stale one fails the check.
"""

from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils


class FrontDoorContract(Contract):
    type_name = "front_doors"

    apps = fields.ListField(subfield=fields.StringField())
    front_doors = fields.ListField(subfield=fields.StringField())
    # Whole modules that are one app's front door too, e.g. "accounts.roles" (and their submodules).
    extra_front_doors = fields.ListField(subfield=fields.StringField(), required=False)
    # Importers that may open any door (cdp_crm's URLconfs include every app's urls and api.urls).
    exempt_importers = fields.ListField(subfield=fields.StringField(), required=False)
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR
    )

    def check(self, graph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,
            unmatched_alerting=self.unmatched_ignore_imports_alerting,
        )
        doors = set(self.front_doors)
        extra = tuple(self.extra_front_doors or ())
        exempt = set(self.exempt_importers or ())
        links = []
        for app in self.apps:
            for imported in sorted(graph.find_descendants(app)):
                if imported.split(".")[1] in doors or _within(imported, extra):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    owner = importer.split(".")[0]
                    if owner == app or owner in exempt:
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = ", ".join(str(d["line_number"]) for d in details)
                    links.append(f"{importer} -> {imported} (l.{lines})")
        return ContractCheck(
            kept=not links,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"links": links},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        doors = ", ".join(self.front_doors)
        output.print_error(f"Another app's module imported past its front doors ({doors}):")
        output.new_line()
        for link in check.metadata["links"]:
            output.print_error(f"- {link}", bold=False)
        output.new_line()


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)
