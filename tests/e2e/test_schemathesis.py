"""schemathesis against the REAL register's /openapi.json: no 5xx and no crash, signed or not.

Every operation in the served spec gets 50 generated requests per mode (positive and negative), each
sent over loopback HTTP as it is (401), signed with an enrolled device key (RFC 9421 over the exact
bytes sent; mostly 403, another device's log), and signed with the body's ``origin`` set to the
device's own log so that it reaches body validation, the batch checks and the database.
Any 4xx is an acceptable answer; a 5xx or a dropped connection fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings

from ledger.httpsig import sign_request
from ledger.keys import load_key
from ledger.note import Ed25519Signer
from tests.e2e.conftest import ThreadedRegister, enrol, fast_dir, new_ledger

pytest.importorskip("schemathesis", reason="pip install schemathesis (a dev dependency)")
from schemathesis import BaseSchema, Case, GenerationMode, openapi
from schemathesis.checks import not_a_server_error


class DeviceSignature(requests.auth.AuthBase):
    """Signs each prepared request (method, URL, exact body) with the device key."""

    def __init__(self, signer: Ed25519Signer, *, own_origin: bool = False) -> None:
        self.signer = signer
        self.own_origin = own_origin  # the body's "origin" is replaced by the device's own log

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body if isinstance(r.body, bytes) else str(r.body or "").encode()
        headers = {k: str(v) for k, v in r.headers.items() if k.lower() == "content-type"}
        signed = sign_request(str(r.method), str(r.url), headers, body, self.signer, now=int(time.time()))
        r.headers.update(signed)
        return r


@pytest.fixture(scope="module")
def register_under_test() -> Iterator[tuple[ThreadedRegister, Ed25519Signer]]:
    work = fast_dir()
    ledger = new_ledger(work / "device", 40)
    enrol(str(work / "register.db"), ledger)
    reg = ThreadedRegister(str(work / "register.db"), work / "register-state").start()
    yield reg, load_key(ledger.with_name("device.key"))
    reg.stop()


@pytest.fixture(scope="module")
def api(register_under_test: tuple[ThreadedRegister, Ed25519Signer]) -> BaseSchema:
    reg, _ = register_under_test
    return openapi.from_url(reg.url + "/openapi.json")


#: Operations where a device signature is the credential: signed requests must get past authentication.
SIGNED = (("POST", "/v1/push"), ("GET", "/v1/state"), ("POST", "/v1/heartbeat"))
#: Enrolment takes a one-time token, roster files a signature by a device of that kindergarten: for both
#: the fuzzer mostly gets 401/403/404, and what matters is that nothing gets a 5xx.
OTHERS = (
    ("POST", "/v1/enrol/challenge"),
    ("POST", "/v1/enrol"),
    ("GET", "/v1/rosters/{kindergarten}/metadata/{name}"),
    ("GET", "/v1/rosters/{kindergarten}/targets/{name}"),
)
OPERATIONS = SIGNED + OTHERS
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def test_openapi_lists_exactly_the_operations_fuzzed(api: BaseSchema) -> None:
    listed = {(m.upper(), p) for p, ops in api.raw_schema["paths"].items() for m in ops}
    assert listed == set(OPERATIONS)


#: Negative cases exist only where a schema can be violated; the others' inputs are path strings (and a
#: token header), which the positive generator already fills with arbitrary text.
CASES = [(m, p, mode) for m, p in SIGNED for mode in MODES] + [
    (m, p, GenerationMode.POSITIVE) for m, p in OTHERS
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=str)
def test_no_server_errors(
    api: BaseSchema,
    register_under_test: tuple[ThreadedRegister, Ed25519Signer],
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    reg, signer = register_under_test
    sent: list[int] = []

    @given(case=api[path][method].as_strategy(generation_mode=mode))
    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Case[Any]) -> None:
        attempts: list[requests.auth.AuthBase | None] = [None, DeviceSignature(signer)]
        body = case.body
        if isinstance(body, dict) and "origin" in body:
            attempts.append(DeviceSignature(signer, own_origin=True))
        for auth in attempts:
            with requests.Session() as session:
                session.auth = auth
                if isinstance(auth, DeviceSignature) and auth.own_origin and isinstance(body, dict):
                    case.body = {**body, "origin": signer.name}  # past the 403, into the checks
                response = case.call(base_url=reg.url, session=session, timeout=60)
            sent.append(response.status_code)
            assert response.status_code < 500, (response.status_code, response.text)
            case.validate_response(response, checks=[not_a_server_error])

    fuzz()
    assert len(sent) >= 2 and 401 in sent  # unsigned requests were refused
    if (method, path) in SIGNED:
        assert any(code not in (401, 403) for code in sent)  # signed ones got past authentication
