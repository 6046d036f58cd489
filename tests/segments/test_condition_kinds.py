"""The compiler's extension point for condition kinds over other apps' data
(segments.definition.kinds.CONDITION_KINDS) and the drain's derived-data hooks
(settings.PROFILE_UPDATE_DERIVED_HOOKS)."""

import pytest
from django.db.models import Q
from django.db.models.functions import Length

from identity.models import ProfileUpdate
from segments import services
from segments.definition import compiler, kinds
from segments.models import SegmentKind
from tests.factories import make_contact, make_user
from tests.segments.helpers import matches, members, one

pytestmark = pytest.mark.django_db


def _parse(obj: dict, path: str) -> int:
    if type(obj.get("at_least")) is not int:
        raise compiler.DefinitionError(f"{path}.at_least", "expected a whole number.")
    return obj["at_least"]


def _compile(at_least: int, ctx: compiler.Context) -> Q:
    from contacts.models import Contact

    long_titles = Contact.objects.alias(n=Length("title")).filter(n__gte=at_least).values("pk")
    return Q(pk__in=long_titles)


TITLE_KIND = compiler.ConditionKind(
    keys=frozenset({"at_least"}),
    parse=_parse,
    compile=_compile,
    describe=lambda at_least: f"Title of at least {at_least} characters",
    has_window=lambda at_least: at_least > 100,
)


@pytest.fixture
def title_kind(monkeypatch):
    monkeypatch.setitem(kinds.CONDITION_KINDS, "title_len", TITLE_KIND)


def test_a_registered_kind_parses_compiles_describes_and_analyses(title_kind):
    short = make_contact(title="CEO")
    long = make_contact(title="Head of Platform")
    definition = one({"type": "title_len", "at_least": 5})
    assert matches(definition) == {long.pk}
    assert matches({"op": "or", "conditions": [{"type": "title_len", "at_least": 1}]}) == {short.pk, long.pk}
    tree = compiler.parse(definition)
    assert compiler.describe(tree.children[0]) == "Title of at least 5 characters"
    assert compiler.analyse(tree) == {"triggers": ["profile"], "depends_on": [], "has_window": False}
    assert compiler.analyse(compiler.parse(one({"type": "title_len", "at_least": 101})))["has_window"]


def test_a_registered_kind_reports_its_errors_and_unknown_keys(title_kind):
    with pytest.raises(compiler.DefinitionError) as bad:
        compiler.parse(one({"type": "title_len", "at_least": "x"}))
    assert bad.value.path == "definition.conditions[0].at_least"
    with pytest.raises(compiler.DefinitionError, match="unknown key 'extra'"):
        compiler.parse(one({"type": "title_len", "at_least": 1, "extra": 1}))


def test_unknown_types_name_the_registered_kinds(title_kind):
    with pytest.raises(compiler.DefinitionError, match=r"expected one of page, .*consent, .*title_len"):
        compiler.parse(one({"type": "nope"}))


def test_without_the_kind_registered_the_type_is_refused():
    with pytest.raises(compiler.DefinitionError, match="expected one of"):
        compiler.parse(one({"type": "title_len", "at_least": 1}))


CALLS: list[list[int]] = []


def derived_for_test(*, contact_ids: list[int]) -> None:
    """A derived-data hook: records its call and changes what the segment reads."""
    from contacts.models import Contact

    CALLS.append(sorted(contact_ids))
    Contact.objects.filter(pk__in=contact_ids).update(title="Written by the derived hook")


def test_the_drain_runs_the_derived_hooks_before_segments_see_the_contacts(title_kind, settings):
    settings.PROFILE_UPDATE_DERIVED_HOOKS = ["tests.segments.test_condition_kinds.derived_for_test"]
    CALLS.clear()
    admin = make_user(role="Admin")
    contact = make_contact(title="")
    segment = services.segment_create(
        actor=admin,
        name="Long titles",
        definition=one({"type": "title_len", "at_least": 10}),
        kind=SegmentKind.DYNAMIC,
    )
    assert members(segment) == set()
    from django.utils import timezone

    now = timezone.now()
    ProfileUpdate.objects.create(contact=contact, updated_at=now, first_changed_at=now)
    assert services.profile_updates_process() == 1
    assert [[contact.pk]] == CALLS
    # the segment saw the value the hook wrote in the same drain
    assert members(segment) == {contact.pk}
