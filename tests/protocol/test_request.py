"""Dispatcher-level request validation (notes §2.5, observed §5/§6)."""

from __future__ import annotations

import pytest

from conformance.protocol import OOB_DRAFT, QGA, QMP_1_0, Request, RequestError, validate_request
from conformance.protocol._qemu import qdict_order
from conformance.protocol.values import JSON


def check(value: JSON, oob: bool = True) -> Request | RequestError:
    return validate_request(value, oob_enabled=oob)


def test_valid_request() -> None:
    req = check({"execute": "query-name", "arguments": {"a": 1}, "id": [1]})
    assert req == Request("query-name", {"a": 1}, [1], True, False)
    assert check({"execute": "x"}) == Request("x", {}, None, False, False)
    assert check({"exec-oob": "yank"}) == Request("yank", {}, None, False, True)
    assert check({"execute": "x", "id": None}) == Request("x", {}, None, True, False)


@pytest.mark.parametrize(
    ("value", "oob", "desc"),
    [
        ([1], True, "QMP input must be a JSON object"),
        ({"id": 5}, True, "QMP input lacks member 'execute'"),
        ({"execute": 1, "id": 2}, True, "QMP input member 'execute' must be a string"),
        ({"exec-oob": None}, True, "QMP input member 'exec-oob' must be a string"),
        ({"exec-oob": None}, False, "QMP input member 'exec-oob' is unexpected"),
        ({"exec-oob": "yank", "id": "n1"}, False, "QMP input member 'exec-oob' is unexpected"),
        (
            {"execute": "x", "exec-oob": "x"},
            True,
            "QMP input member 'execute' clashes with 'exec-oob'",
        ),
        (
            {"exec-oob": "x", "execute": "x"},
            True,
            "QMP input member 'execute' clashes with 'exec-oob'",
        ),
        ({"execute": "x", "arguments": []}, True, "QMP input member 'arguments' must be an object"),
        ({"execute": "x", "control": {}}, True, "QMP input member 'control' is unexpected"),
        # hash order decides which problem is reported: 'a' (bucket 233) < 'execute' (299)
        ({"execute": 1, "a": 1}, True, "QMP input member 'a' is unexpected"),
        ({"b": 1, "a": 1, "c": 1, "execute": "x"}, True, "QMP input member 'a' is unexpected"),
        # 'arguments' (447) is checked after 'execute' (299)
        ({"arguments": 1, "execute": 1}, True, "QMP input member 'execute' must be a string"),
    ],
)
def test_errors(value: JSON, oob: bool, desc: str) -> None:
    result = check(value, oob)
    assert isinstance(result, RequestError)
    assert result.error_class == "GenericError"
    assert result.desc == desc
    has_id = isinstance(value, dict) and "id" in value
    assert result.has_id is has_id
    if has_id:
        assert isinstance(value, dict) and result.id == value["id"]


def test_qdict_order_matches_observed_output_order() -> None:
    assert qdict_order(["return", "id"]) == ["return", "id"]
    assert qdict_order(["error", "id"]) == ["id", "error"]
    assert qdict_order(["desc", "class"]) == ["class", "desc"]
    assert qdict_order(["event", "data", "timestamp"]) == ["timestamp", "event", "data"]
    assert qdict_order(["major", "minor", "micro"]) == ["micro", "minor", "major"]
    assert qdict_order(["qemu", "package"]) == ["qemu", "package"]
    assert qdict_order(["capabilities", "version"]) == ["version", "capabilities"]


def test_other_dialects() -> None:
    assert isinstance(
        validate_request({"exec-oob": "x"}, oob_enabled=False, dialect=QGA), RequestError
    )
    assert isinstance(
        validate_request({"exec-oob": "x"}, oob_enabled=True, dialect=QMP_1_0), RequestError
    )
    draft = {"execute": "yank", "control": {"run-oob": True}, "id": 1}
    req = validate_request(draft, oob_enabled=True, dialect=OOB_DRAFT)
    assert isinstance(req, Request) and req.oob
    err = validate_request(draft, oob_enabled=False, dialect=OOB_DRAFT)
    assert isinstance(err, RequestError) and err.has_id
    bad = validate_request({"execute": "x", "control": 1}, oob_enabled=True, dialect=OOB_DRAFT)
    assert isinstance(bad, RequestError) and "control" in bad.desc
    plain = validate_request({"execute": "x", "control": {}}, oob_enabled=True, dialect=OOB_DRAFT)
    assert isinstance(plain, Request) and not plain.oob
