"""The Lists page on a real database and the real app: admins see lists and members, create a list, and
add or remove numbers; everyone else is kept out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape
from web_helpers import HOSTILE_BODIES, OTHER_PATIENT, PASSWORD, PATIENT, WebEnv, make_env, page_csrf


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    e.store.accounts.add_user("ada", PASSWORD, "admin", actor="test")
    e.store.accounts.add_user("sam", PASSWORD, "staff", actor="test")
    yield e
    e.store.close()


def test_the_lists_page_shows_each_list_with_its_keyword_and_member_count(env: WebEnv) -> None:
    env.store.lists.create("newsletter", actor="test", keyword="NEWS", description="Monthly news")
    env.store.lists.add_numbers("newsletter", [PATIENT, OTHER_PATIENT], actor="test", source="test")
    html = env.login("ada").get("/lists").get_data(as_text=True)
    row = html[html.index('href="/lists/newsletter"'):html.index("</tr>", html.index('href="/lists/newsletter"'))]
    assert "STOP NEWS" in row and "<td>2</td>" in row and "Monthly news" in row
    assert '>Lists</a>' in html


def test_only_admins_see_the_lists_page(env: WebEnv) -> None:
    client = env.login("sam")
    assert client.get("/lists").status_code == 403
    assert ">Lists</a>" not in client.get("/status").get_data(as_text=True)
    assert env.client().get("/lists").status_code == 302  # to the login page


def test_an_admin_creates_a_list_and_adds_and_removes_numbers(env: WebEnv) -> None:
    client = env.login("ada")
    token = page_csrf(client, "/lists")
    made = client.post("/lists", data={"name": "Flu", "keyword": "flu", "description": "", "csrf_token": token})
    assert made.status_code == 302 and made.headers["Location"].endswith("/lists/flu")
    added = client.post("/lists/flu/members", data={"numbers": f"{PATIENT}, +1 555 555 0102\n",
                                                   "action": "add", "csrf_token": token}, follow_redirects=True)
    page = added.get_data(as_text=True)
    assert "Added 2 to flu." in page and "marketing also needs an opt-in" in page
    assert PATIENT in page and OTHER_PATIENT in page and "2 members" in page
    env.store.consent.record(PATIENT, "opt_in", scope="flu", source="web form", actor="staff", evidence="form")
    page = client.get("/lists/flu").get_data(as_text=True)
    mine = page[page.index(PATIENT):page.index("</tr>", page.index(PATIENT))]
    assert "<td>yes</td>" in mine
    removed = client.post("/lists/flu/members", data={"numbers": PATIENT, "action": "remove", "csrf_token": token},
                          follow_redirects=True)
    assert "Removed 1 from flu." in removed.get_data(as_text=True)
    assert [m["number"] for m in env.store.lists.members("flu")] == [OTHER_PATIENT]


def test_a_bad_number_is_reported_and_nothing_is_added(env: WebEnv) -> None:
    env.store.lists.create("flu", actor="test")
    client = env.login("ada")
    token = page_csrf(client, "/lists/flu")
    page = client.post("/lists/flu/members", data={"numbers": f"{PATIENT}\n12", "action": "add", "csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "&#39;12&#39; is not a valid phone number" in page and "Nothing was changed." in page
    assert env.store.lists.count("flu") == 0


@pytest.mark.parametrize(("form", "message"), [
    ({"name": "all"}, "cannot be a list name"),
    ({"name": "news", "keyword": "STOP"}, "is a compliance word"),
])
def test_a_list_that_cannot_be_made_is_explained_on_the_page(env: WebEnv, form: dict[str, str], message: str) -> None:
    client = env.login("ada")
    token = page_csrf(client, "/lists")
    page = client.post("/lists", data={**form, "csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert message in page and env.store.lists.all() == []


def test_a_missing_list_is_a_404_and_a_post_without_the_csrf_token_is_refused(env: WebEnv) -> None:
    client = env.login("ada")
    assert client.get("/lists/nope").status_code == 404
    env.store.lists.create("flu", actor="test")
    assert client.post("/lists/flu/members", data={"numbers": PATIENT, "action": "add"}).status_code == 403
    assert env.store.lists.count("flu") == 0


@pytest.mark.parametrize("hostile", HOSTILE_BODIES)
def test_list_descriptions_and_names_of_members_are_escaped(env: WebEnv, hostile: str) -> None:
    env.store.lists.create("flu", actor="test", description=hostile)
    env.store.lists.add_numbers("flu", [PATIENT], actor="test", source="test")
    env.store.contacts.update(PATIENT, first_name=hostile)
    client = env.login("ada")
    for path in ("/lists", "/lists/flu"):
        page = client.get(path).get_data(as_text=True)
        assert str(escape(hostile)) in page and "<script>alert(1)</script>" not in page
