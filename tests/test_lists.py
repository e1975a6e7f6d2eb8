"""Static lists: named sets of contacts, by contact, safe to add to twice."""

from __future__ import annotations

import pytest

from smsgate.queue.errors import NotFound
from smsgate.queue.lists import ListError
from smsgate.queue.store import Store


def test_a_list_name_is_stored_lower_case_and_found_in_any_case(store: Store) -> None:
    created = store.lists.create("Newsletter", actor="admin", keyword="news")
    assert created.name == "newsletter"
    assert created.keyword == "NEWS"
    assert store.lists.get("NEWSLETTER") == created


@pytest.mark.parametrize("bad", ["", "all", "two words", "x" * 41, "-leading", "semi;colon"])
def test_a_name_a_patient_could_not_type_after_stop_is_refused(store: Store, bad: str) -> None:
    with pytest.raises(ListError, match="cannot be a list name"):
        store.lists.create(bad, actor="admin")
    assert store.lists.all() == []


def test_a_second_list_with_the_same_name_or_keyword_is_refused(store: Store) -> None:
    store.lists.create("flu", actor="admin", keyword="FLU")
    with pytest.raises(ListError, match="already exists"):
        store.lists.create("FLU", actor="admin")
    with pytest.raises(ListError, match="another list"):
        store.lists.create("flu-2027", actor="admin", keyword="flu")


def test_adding_the_same_contacts_twice_adds_them_once(store: Store) -> None:
    store.lists.create("diabetes", actor="admin")
    ids = [store.contacts.ensure(n) for n in ("+12025550101", "+12025550102")]
    assert store.lists.add_members("diabetes", ids, actor="admin", source="cli") == 2
    assert store.lists.add_members("diabetes", ids, actor="admin", source="import") == 0
    assert store.lists.count("diabetes") == 2
    assert [m["number"] for m in store.lists.members("diabetes")] == ["+12025550101", "+12025550102"]
    assert store.lists.lists_of(ids[0]) == ["diabetes"]
    assert store.lists.remove_members("diabetes", ids[:1], actor="admin") == 1
    assert store.lists.count("diabetes") == 1


def test_ensure_creates_a_missing_list_once(store: Store) -> None:
    first = store.lists.ensure("Recall", actor="import")
    assert store.lists.ensure("recall", actor="import") == first
    assert len(store.lists.all()) == 1


def test_members_of_a_missing_list_say_how_to_find_the_lists(store: Store) -> None:
    with pytest.raises(NotFound, match="smsgate lists list"):
        store.lists.members("nope")
