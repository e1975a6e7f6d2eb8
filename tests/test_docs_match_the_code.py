"""What the docs promise is what the code does: the reliability checklist names tests that exist, `sim fault
--help` names every fault the simulator has, and the OpenAPI schema describes the fields the API accepts.

Each list on the code side is derived from the code or from the running app, never copied into this file, so
the test fails the day one side moves without the other.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from web_helpers import PATIENT, WebEnv, add_modem, bearer, make_env, receive

from smsgate.cli import cli
from smsgate.simulator import SimModemSpec, Simulator
from smsgate.simulator.control import apply_fault
from smsgate.simulator.core import FaultHandle
from smsgate.simulator.fault_table import FAULTS, FAULTS_BY_NAME, usage_lines

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
DOCS = REPO / "docs"


# --- docs/reliability-checklist.md -------------------------------------------------------------------------

CHECKLIST = (DOCS / "reliability-checklist.md").read_text(encoding="utf-8")
NAMED_TESTS = sorted(set(re.findall(r"\b(test_\w+\.py)::(test_\w+)", CHECKLIST)))


@cache
def _test_functions(filename: str) -> frozenset[str]:
    tree = ast.parse((TESTS / filename).read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"))


def test_the_checklist_names_tests_at_all() -> None:
    # Guards the pattern above: a reformatted checklist must not make the next test pass by finding nothing.
    assert len(NAMED_TESTS) > 50


@pytest.mark.parametrize(("filename", "name"), NAMED_TESTS, ids=[f"{f}::{n}" for f, n in NAMED_TESTS])
def test_every_test_the_reliability_checklist_names_exists(filename: str, name: str) -> None:
    assert (TESTS / filename).is_file(), f"docs/reliability-checklist.md names tests/{filename}, which is gone"
    assert name in _test_functions(filename), f"tests/{filename} has no {name} (renamed? fix the checklist)"


# --- simulator faults ----------------------------------------------------------------------------------------

IMPLEMENTED_FAULTS = sorted(name for name, _ in inspect.getmembers(FaultHandle, inspect.isfunction)
                            if not name.startswith("_"))
# The least a fault needs on the command line; every other fault runs with its defaults.
REQUIRED_ARGS = {"cms_error": ["38"], "command_error": ["AT+CMGD", "+CMS ERROR: 320"]}


def test_the_simulator_has_faults_at_all() -> None:
    assert {"unplug", "hang", "cms_error"} <= set(IMPLEMENTED_FAULTS)


@pytest.mark.parametrize("fault", IMPLEMENTED_FAULTS)
def test_every_fault_the_simulator_has_is_named_in_sim_fault_help(fault: str) -> None:
    result = CliRunner().invoke(cli, ["sim", "fault", "--help"])
    assert result.exit_code == 0, result.output
    assert re.search(rf"(?<![\w-]){fault}(?![\w-])", " ".join(result.output.split())), \
        f"`smsgate sim fault --help` does not mention {fault}"


@pytest.mark.parametrize("fault", IMPLEMENTED_FAULTS)
def test_every_fault_the_simulator_has_is_described_in_the_simulator_guide(fault: str) -> None:
    section = (DOCS / "simulator.md").read_text(encoding="utf-8").split("## Faults", 1)[1].split("\n## ", 1)[0]
    assert f"`{fault}(" in section, f"docs/simulator.md, section Faults, does not describe {fault}"


def test_the_fault_table_has_every_fault_handle_method_with_its_parameters_in_order() -> None:
    # The control socket and the CLI reach a fault's parameters only through the table: a parameter missing
    # there (cms_error's `after`, hang's `keep_urcs`) cannot be set from `smsgate sim fault` at all.
    table = {f.name: [a.name for a in f.args] for f in FAULTS}
    handle = {name: [p for p in inspect.signature(getattr(FaultHandle, name)).parameters if p != "self"]
              for name in IMPLEMENTED_FAULTS}
    assert table == handle
    for fault in FAULTS:
        params = inspect.signature(getattr(FaultHandle, fault.name)).parameters
        required = [a.name for a in fault.args if params[a.name].default is inspect.Parameter.empty]
        assert [a.name for a in fault.args[: fault.required]] == required, fault.name


def test_sim_fault_help_is_the_fault_tables_usage_lines() -> None:
    result = CliRunner().invoke(cli, ["sim", "fault", "--help"])
    assert result.exit_code == 0, result.output
    listed = [line.strip() for line in result.output.splitlines()
              if line.strip().split(" ", 1)[0] in FAULTS_BY_NAME]
    assert listed == usage_lines()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    with Simulator(tmp_path_factory.mktemp("sim"), [SimModemSpec("m1", "quectel")], latency=0) as sim:
        yield sim


@pytest.mark.parametrize("fault", IMPLEMENTED_FAULTS)
def test_every_fault_the_simulator_has_can_be_injected_by_name_as_the_cli_does(
        simulator: Simulator, fault: str) -> None:
    # The CLI sends the name and string arguments over the control socket to apply_fault: a fault it does not
    # dispatch would answer "unknown fault" to an admin who copied the name from --help.
    apply_fault(simulator, "m1", fault, REQUIRED_ARGS.get(fault, []))
    apply_fault(simulator, "m1", "replug", [])


# --- OpenAPI schema against the running API ------------------------------------------------------------------

@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path, api_sends_per_minute=0)
    yield e
    e.store.close()


@pytest.fixture
def api(env: WebEnv) -> tuple[WebEnv, dict[str, str]]:
    _, secret = env.store.accounts.create_token("schema-check", "admin", actor="test")
    # What the documented path examples name: the list and the segment exist.
    env.store.lists.create(_path_example("/api/v1/lists/{name}/members"), actor="test")
    env.store.segments.create(_path_example("/api/v1/segments/{name}/preview"), "tag:diabetes", actor="test")
    return env, bearer(secret)


@cache
def _spec() -> dict[str, Any]:
    # The file `/api/v1/openapi.json` serves, read where the route reads it (the package data).
    spec: dict[str, Any] = json.loads(resources.files("smsgate.web").joinpath("openapi.json").read_text("utf-8"))
    return spec


def _new_message() -> dict[str, Any]:
    schema: dict[str, Any] = _spec()["components"]["schemas"]["NewMessage"]
    return schema


def _samples(schema: dict[str, Any]) -> list[Any]:
    """Every documented form of a value: each alternative of a oneOf, each enum member, else the example."""
    if "oneOf" in schema:
        return [value for alternative in schema["oneOf"] for value in _samples(alternative)]
    if "enum" in schema:
        return list(schema["enum"])
    if "example" in schema:
        return [schema["example"]]
    if schema.get("format") == "date-time":
        return ["2030-01-02T09:30:00-05:00"]
    return [{"string": "schema-sample", "integer": 1, "object": {}}[schema["type"]]]


def _documented_forms() -> list[tuple[str, Any]]:
    schema = _new_message()
    return [(name, value) for name, prop in sorted(schema["properties"].items()) if name not in schema["required"]
            for value in _samples(prop)]


def _post(api: tuple[WebEnv, dict[str, str]], body: Any) -> Any:
    env, headers = api
    return env.client().post("/api/v1/messages", json=body, headers=headers)


def _base(n: int = 0) -> dict[str, Any]:
    return {"to": PATIENT, "text": f"Your appointment is on Monday ({n})"}


@pytest.mark.parametrize(("field", "value"), _documented_forms(), ids=lambda v: str(v))
def test_every_field_the_schema_documents_is_accepted_in_each_documented_form(
        api: tuple[WebEnv, dict[str, str]], field: str, value: Any) -> None:
    # Understood is not the same as sent: a marketing text to a number without an opt-in is refused with 422
    # by the consent rule, after the field was read. A field the API does not take is a 400.
    response = _post(api, {**_base(), field: value})
    assert response.status_code in (200, 201, 422), response.get_json()
    answer = response.get_json()["error" if response.status_code == 422 else "state"]
    assert answer in ("rejected", "queued", "no_list", "no_opt_in")


def test_the_api_refuses_fields_the_schema_does_not_document_and_knows_exactly_the_documented_ones(
        api: tuple[WebEnv, dict[str, str]]) -> None:
    schema = _new_message()
    assert schema["additionalProperties"] is False
    response = _post(api, {**_base(), "not_befor": "2030-01-02T09:30:00-05:00"})
    assert response.status_code == 400 and response.get_json()["field"] == "not_befor"
    # The refusal tells the developer the fields the API knows; they are the ones the schema documents.
    known = re.search(r"known fields: ([\w, ]+)", response.get_json()["message"])
    assert known, response.get_json()["message"]
    assert set(known.group(1).split(", ")) == set(schema["properties"])


@pytest.mark.parametrize("field", ["to", "text"])
def test_each_field_the_schema_requires_is_required(api: tuple[WebEnv, dict[str, str]], field: str) -> None:
    assert field in _new_message()["required"]
    body = _base()
    del body[field]
    response = _post(api, body)
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_the_schema_requires_no_more_than_to_and_text(api: tuple[WebEnv, dict[str, str]]) -> None:
    assert set(_new_message()["required"]) == {"to", "text"}
    assert _post(api, _base()).status_code == 201


def _enum_fields() -> list[str]:
    return sorted(name for name, prop in _new_message()["properties"].items()
                  if "enum" in prop or all("enum" in alt for alt in prop.get("oneOf", [{}])))


@pytest.mark.parametrize("field", _enum_fields())
def test_a_value_outside_a_documented_enum_is_refused(api: tuple[WebEnv, dict[str, str]], field: str) -> None:
    response = _post(api, {**_base(), field: "urgent-please"})
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_the_documented_idempotency_key_length_is_the_limit(api: tuple[WebEnv, dict[str, str]]) -> None:
    limit = _new_message()["properties"]["idempotency_key"]["maxLength"]
    assert _post(api, {**_base(1), "idempotency_key": "k" * limit}).status_code == 201
    too_long = _post(api, {**_base(2), "idempotency_key": "k" * (limit + 1)})
    assert too_long.status_code == 400 and too_long.get_json()["field"] == "idempotency_key"


def _path_example(path: str) -> str:
    """The documented example of the one path parameter of `path`."""
    operation = next(iter(_spec()["paths"][path].values()))
    (parameter,) = [p for p in operation["parameters"] if p["in"] == "path"]
    return str(parameter["schema"]["example"])


def _url(path: str) -> str:
    return re.sub(r"\{\w+\}", lambda _: _path_example(path), path)


def _query_parameters() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path, operations in sorted(_spec()["paths"].items()):
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] == "query":
                out.append((_url(path), parameter["name"], _resolve(parameter["schema"])))
    return out


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        node: Any = _spec()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return dict(node)
    return schema


@pytest.mark.parametrize(("path", "name", "schema"), _query_parameters(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_documented_query_parameter_takes_its_documented_values(
        api: tuple[WebEnv, dict[str, str]], path: str, name: str, schema: dict[str, Any]) -> None:
    env, headers = api
    client = env.client()
    values = list(schema.get("enum", []))
    if schema.get("type") == "integer":
        values += [schema["minimum"], schema.get("maximum", schema["minimum"] + 10)]
    for value in values or ["front"]:
        response = client.get(path, query_string={name: value}, headers=headers)
        assert response.status_code == 200, (name, value, response.get_json())
    if "default" in schema:
        assert client.get(path, headers=headers).get_json()[name] == schema["default"]


# `unread` is a switch: the API reads "1" or "true" as on and anything else as off, so nothing is refused.
@pytest.mark.parametrize(("path", "name", "schema"),
                         [q for q in _query_parameters() if ("enum" in q[2] or "minimum" in q[2]) and q[1] != "unread"],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_a_query_value_outside_the_documented_range_is_refused_with_a_400(
        api: tuple[WebEnv, dict[str, str]], path: str, name: str, schema: dict[str, Any]) -> None:
    env, headers = api
    if schema.get("type") == "integer":
        bad = [schema["minimum"] - 1] + ([schema["maximum"] + 1] if "maximum" in schema else [])
    else:
        bad = ["urgent-please"]
    for value in bad:
        response = env.client().get(path, query_string={name: value}, headers=headers)
        assert response.status_code == 400, (name, value, response.get_json())


def test_the_states_a_message_list_can_be_filtered_by_are_the_documented_states(
        api: tuple[WebEnv, dict[str, str]]) -> None:
    env, headers = api
    refusal = env.client().get("/api/v1/messages", query_string={"state": "lost"}, headers=headers).get_json()
    listed = re.search(r"use one of ([\w, ]+)", refusal["message"])
    assert listed, refusal["message"]
    assert listed.group(1).split(", ") == _resolve({"$ref": "#/components/schemas/State"})["enum"]


def _properties(schema_name: str) -> set[str]:
    return set(_spec()["components"]["schemas"][schema_name]["properties"])


def test_the_message_the_api_returns_has_exactly_the_documented_fields(api: tuple[WebEnv, dict[str, str]]) -> None:
    env, headers = api
    created = _post(api, _base()).get_json()
    assert set(created) == _properties("Queued")
    one = env.client().get(f"/api/v1/messages/{created['id']}", headers=headers).get_json()
    assert set(one) == _properties("Message")
    listed = env.client().get("/api/v1/messages", headers=headers).get_json()["messages"]
    assert set(listed[0]) == _properties("Message") - {"history"}


def test_the_conversation_the_api_returns_has_exactly_the_documented_fields(
        api: tuple[WebEnv, dict[str, str]]) -> None:
    env, headers = api
    receive(env.store, None, PATIENT, "Can I come at nine?")
    [conversation] = env.client().get("/api/v1/conversations", headers=headers).get_json()["conversations"]
    assert set(conversation) == _properties("Conversation")


def test_the_modem_and_health_the_api_return_have_exactly_the_documented_fields(
        api: tuple[WebEnv, dict[str, str]]) -> None:
    env, headers = api
    add_modem(env.store)
    [modem] = env.client().get("/api/v1/modems", headers=headers).get_json()["modems"]
    assert set(modem) == _properties("Modem")
    assert set(env.client().get("/api/v1/health").get_json()) == _properties("Health")


def test_the_lists_and_segments_the_api_returns_have_exactly_the_documented_fields(
        api: tuple[WebEnv, dict[str, str]]) -> None:
    env, headers = api
    client = env.client()
    created = client.post("/api/v1/lists", json={"name": "flu", "keyword": "FLU"}, headers=headers)
    assert created.status_code == 201 and set(created.get_json()) == _properties("List")
    listed = client.get("/api/v1/lists", headers=headers).get_json()
    assert set(listed) == _properties("Lists") and set(listed["lists"][0]) == _properties("List")
    added = client.post("/api/v1/lists/flu/members", json={"numbers": [PATIENT]}, headers=headers).get_json()
    assert set(added) == _properties("MembersAdded")
    members = client.get("/api/v1/lists/flu/members", headers=headers).get_json()
    assert set(members) == _properties("ListMembers")
    member_schema = _spec()["components"]["schemas"]["ListMembers"]["properties"]["members"]["items"]
    assert set(members["members"][0]) == set(member_schema["properties"])
    removed = client.delete("/api/v1/lists/flu/members", json={"numbers": [PATIENT]}, headers=headers).get_json()
    assert set(removed) == _properties("MembersRemoved")
    env.store.contacts.update(PATIENT, tags=["diabetes"])
    saved = client.post("/api/v1/segments", json={"name": "all-diabetes", "where": "tag:diabetes"}, headers=headers)
    assert saved.status_code == 201 and set(saved.get_json()) == _properties("Segment")
    assert set(client.get("/api/v1/segments", headers=headers).get_json()) == _properties("Segments")
    preview = client.get("/api/v1/segments/all-diabetes/preview", headers=headers).get_json()
    assert set(preview) == _properties("SegmentPreview")
    row_schema = _spec()["components"]["schemas"]["SegmentPreview"]["properties"]["rows"]["items"]
    assert set(preview["rows"][0]) == set(row_schema["properties"])


@pytest.mark.parametrize("schema", ["NewList", "NewSegment", "Numbers"])
def test_the_list_and_segment_bodies_know_exactly_the_documented_fields(
        api: tuple[WebEnv, dict[str, str]], schema: str) -> None:
    env, headers = api
    path = {"NewList": "/api/v1/lists", "NewSegment": "/api/v1/segments",
            "Numbers": "/api/v1/lists/" + _path_example("/api/v1/lists/{name}/members") + "/members"}[schema]
    refusal = env.client().post(path, json={"typo": "x"}, headers=headers).get_json()
    known = re.search(r"known fields: ([\w, ]+)", refusal["message"])
    assert known, refusal
    assert set(known.group(1).split(", ")) == set(_spec()["components"]["schemas"][schema]["properties"])
