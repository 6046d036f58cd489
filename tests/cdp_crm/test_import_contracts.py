"""The front-door contract (`lint-imports`), checked on small hand-built import graphs."""

import grimp

from cdp_crm.import_contracts import FrontDoorContract

APPS = ["pipeline", "contacts", "accounts"]


def _check(*imports: tuple[str, str], ignore: tuple[str, ...] = ()):
    graph = grimp.ImportGraph()
    for app in APPS:
        graph.add_module(app)
    for importer, imported in imports:
        for module in (importer, imported):
            for depth in range(1, module.count(".") + 2):
                graph.add_module(".".join(module.split(".")[:depth]))
        graph.add_import(importer=importer, imported=imported, line_number=3, line_contents="import")
    contract = FrontDoorContract(
        name="front doors",
        session_options={},
        contract_options={
            "apps": APPS,
            "front_doors": ["models", "services", "selectors", "permissions"],
            "extra_front_doors": ["accounts.roles"],
            "exempt_importers": ["cdp_crm"],
            "ignore_imports": list(ignore),
        },
    )
    return contract.check(graph, verbose=False)


def test_front_doors_and_their_submodules_are_open():
    check = _check(
        ("pipeline.services.deals", "contacts.models"),
        ("pipeline.services.deals", "contacts.services.changes"),
        ("pipeline.views.board", "contacts.selectors"),
        ("pipeline.permissions", "accounts.roles"),
        ("pipeline.urls", "pipeline.views.board"),
        ("cdp_crm.urls", "contacts.urls"),
    )
    assert check.kept, check.metadata


def test_another_apps_views_forms_and_api_are_not():
    check = _check(
        ("pipeline.services.deals", "contacts.views.records"),
        ("pipeline.forms", "contacts.forms"),
        ("pipeline.api.views", "contacts.api.views"),
        ("contacts.views.records", "accounts.forms"),
    )
    assert not check.kept
    assert check.metadata["links"] == [
        "pipeline.api.views -> contacts.api.views (l.3)",
        "pipeline.forms -> contacts.forms (l.3)",
        "pipeline.services.deals -> contacts.views.records (l.3)",
        "contacts.views.records -> accounts.forms (l.3)",
    ]


def test_a_named_exception_is_let_through():
    check = _check(("pipeline.forms", "contacts.forms"), ignore=("pipeline.forms -> contacts.forms",))
    assert check.kept
