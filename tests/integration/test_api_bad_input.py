"""Bad input, named: each is answered its documented 4xx (never a 5xx) and changes nothing in the
store, the queue or the bucket. Through chalice.test.Client over app.py, SQS and S3 on moto."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from chalicelib.http import MAX_BODY_BYTES
from chalicelib.jobs.model import JobStatus

BASE = "/v1/studio/upload-jobs"
RESOURCE = "64b7f0c2a1b2c3d4e5f60718"
BODY_ROUTES = [
    BASE,
    f"{BASE}/clear",
    f"{BASE}/finished/retry",
    f"{BASE}/finished/cleanup",
    f"/v1/studio/resources/film/{RESOURCE}/retry-failed",  # the title of the failed job `finished`
]


def valid_body(**overrides: Any) -> dict[str, Any]:
    body = {"jobType": "upload-hls-to-s3", "resourceType": "film", "resourceId": RESOURCE}
    body.update({"hlsDir": "films/x/720p", "label": "720p"})
    body.update(overrides)
    return body


@pytest.fixture
def world(api: Any, make_job: Any, services: Any, s3: Any, sqs: Any, queues: dict[str, str]) -> Iterator[Any]:
    """A failed job named `finished` with an object in the bucket; after the test, all must be as before."""
    bucket = services.settings.spaces_bucket
    s3.put_object(Bucket=bucket, Key="films/x/hls/720p/seg0.ts", Body=b"segment")
    make_job(
        jobId="finished", bucketName=bucket, status="failed", writtenKeys=["films/x/hls/720p/seg0.ts"], canCancel=False
    )

    def snapshot() -> Any:
        jobs = sorted(services.store.collection.find({}, {"_id": 0}), key=lambda d: d["jobId"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        depth = {
            name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            for name, url in queues.items()
        }
        return jobs, keys, {name: d["Attributes"] for name, d in depth.items()}

    before = snapshot()
    yield api
    assert snapshot() == before, "bad input changed the store, the bucket or the queues"


def send(api: Any, method: str, path: str, body: bytes | str = b"", headers: dict[str, str] | None = None) -> Any:
    raw = body.encode() if isinstance(body, str) else body
    return api.http.request(method, path, headers=headers or api.admin_headers, body=raw)


def assert_error(response: Any, status: int, code: str, mentions: str = "") -> None:
    assert response.status_code == status, response.body[:300]
    body = json.loads(response.body)
    assert set(body) == {"Code", "Message"}
    assert body["Code"] == code
    assert mentions in body["Message"]


def assert_each(api: Any, cases: list[tuple[str, str, Any, int, str, str]]) -> None:
    """(method, path, body, status, Code, words of the Message) for each case; every mismatch listed."""
    wrong = []
    for method, path, body, status, code, mentions in cases:
        response = send(api, method, path, body if isinstance(body, str | bytes) else json.dumps(body))
        parsed = json.loads(response.body) if response.body.startswith(b"{") else {}
        if (response.status_code, parsed.get("Code"), set(parsed)) != (status, code, {"Code", "Message"}) or (
            mentions not in parsed.get("Message", "")
        ):
            wrong.append(f"{method} {path} {str(body)[:80]!r}: {response.status_code} {response.body[:160]!r}")
    assert wrong == [], "\n".join(wrong)


# --- Bodies ---------------------------------------------------------------------------------------


NOT_JSON = ["not json", "{", '{"status": "all",}', b"\xff\xfe{}", '{"status": NaN}', '{"olderThanDays": Infinity}']


def test_a_body_that_is_not_json_is_400(world: Any) -> None:
    cases = [
        ("POST", path, body, 400, "BadRequestError", "body: is not valid JSON")
        for path in BODY_ROUTES
        for body in NOT_JSON
    ]
    assert_each(world, cases)


def test_json_that_is_not_an_object_is_400(world: Any) -> None:
    bodies = ["[]", "[1, 2]", "12", '"text"', "null", "true"]
    cases = [("POST", p, b, 400, "BadRequestError", "body: must be a JSON object") for p in BODY_ROUTES for b in bodies]
    assert_each(world, cases)


def test_json_nested_deeper_than_the_parser_goes_is_400(world: Any) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert len(deep) < MAX_BODY_BYTES
    assert_error(send(world, "POST", BASE, deep), 400, "BadRequestError", "body: is not valid JSON")


def test_a_body_over_the_limit_is_413(world: Any) -> None:
    huge = json.dumps(valid_body(resourceName="x" * MAX_BODY_BYTES))
    assert_each(world, [("POST", path, huge, 413, "RequestTooLargeError", str(MAX_BODY_BYTES)) for path in BODY_ROUTES])


def test_a_body_just_under_the_limit_is_read(api: Any) -> None:
    body = json.dumps(valid_body(initialMetadata={"note": ""}))
    body = json.dumps(valid_body(initialMetadata={"note": "x" * (MAX_BODY_BYTES - len(body))}))
    assert len(body) == MAX_BODY_BYTES
    assert send(api, "POST", BASE, body).status_code == 201


def test_a_body_that_is_not_declared_json_is_415(world: Any) -> None:
    headers = {**world.admin_headers, "Content-Type": "text/plain"}
    assert_error(send(world, "POST", BASE, json.dumps(valid_body()), headers), 415, "UnsupportedMediaType")


UNKNOWN_FIELDS = [
    (BASE, valid_body(bogus=1), "bogus"),
    (BASE, valid_body(subtitle_path="a.vtt"), "subtitle_path"),
    (f"{BASE}/clear", {"status": "all", "everything": True}, "everything"),
    (f"{BASE}/finished/retry", {"clientId": "c", "force": True}, "force"),
    (f"{BASE}/finished/cleanup", {"removeSources": True}, "removeSources"),
    (f"{BASE}/finished/cleanup", {"remove_source": True}, "remove_source"),
    (f"{BASE}/clear", {"status": "all", "older_than_days": 1}, "older_than_days"),
]


def test_unknown_fields_even_python_names_are_400_naming_them(world: Any) -> None:
    cases = [("POST", p, b, 400, "BadRequestError", f"{f}: is not a known field") for p, b, f in UNKNOWN_FIELDS]
    assert_each(world, cases)


WRONG_TYPES = [
    (BASE, valid_body(resourceId=123), "resourceId"),
    (BASE, valid_body(label=["720p"]), "label"),
    (BASE, valid_body(jobType=1), "jobType"),
    (BASE, valid_body(maxAttempts="5"), "maxAttempts"),
    (BASE, valid_body(maxAttempts=2.5), "maxAttempts"),
    (BASE, valid_body(initialMetadata=[1]), "initialMetadata"),
    (BASE, valid_body(subtitleLanguages="en"), "subtitleLanguages"),
    (f"{BASE}/clear", {"status": "all", "olderThanDays": "7"}, "olderThanDays"),
    (f"{BASE}/clear", {"status": True}, "status"),
    (f"{BASE}/finished/retry", {"clientId": 7}, "clientId"),
    (f"{BASE}/finished/cleanup", {"removeSource": "yes"}, "removeSource"),
    (f"{BASE}/finished/cleanup", {"removeSource": 1}, "removeSource"),
]


def test_wrong_types_are_400_naming_the_field(world: Any) -> None:
    assert_each(world, [("POST", p, b, 400, "BadRequestError", f) for p, b, f in WRONG_TYPES])


def test_clear_refuses_values_out_of_range(world: Any) -> None:
    bodies = [
        ({"status": "all", "olderThanDays": -1}, "olderThanDays"),
        ({"status": "all", "olderThanDays": 1e308}, "olderThanDays"),
        ({"status": "all", "olderThanDays": 36501}, "olderThanDays"),
        ({"status": "waiting"}, "status"),
    ]
    assert_each(world, [("POST", f"{BASE}/clear", b, 400, "BadRequestError", f) for b, f in bodies])


def test_a_job_id_that_names_a_route_is_refused(world: Any) -> None:
    cases = [
        ("POST", BASE, valid_body(jobId=j), 400, "BadRequestError", "reserved")
        for j in ("stats", "clear", "fix-stuck", "bulk")
    ]
    assert_each(world, cases)


def test_metadata_mongodb_cannot_store_as_given_is_400(world: Any) -> None:
    metadata = [{"$set": {"status": "completed"}}, {"a\u0000b": 1}, {"deep": json.loads("[" * 12 + "]" * 12)}]
    cases = [("POST", BASE, valid_body(initialMetadata=m), 400, "BadRequestError", "initialMetadata") for m in metadata]
    assert_each(world, cases)


# --- Ids, cursors, limits -------------------------------------------------------------------------


def test_ids_that_are_not_object_ids_are_400(world: Any) -> None:
    values = ["xyz", "64b7f0c2a1b2c3d4e5f6071", "64b7f0c2a1b2c3d4e5f60718a", "zzb7f0c2a1b2c3d4e5f60718", ""]
    cases = [
        (
            "POST",
            BASE,
            valid_body(**{field: value}),
            400,
            "BadRequestError",
            f"{field} must be a 24-character hex ObjectId",
        )
        for field in ("resourceId", "filmId", "episodeId", "seasonId")
        for value in values
    ]
    assert_each(world, cases)


def test_a_resource_id_filter_that_is_not_an_object_id_is_400(world: Any) -> None:
    assert_error(send(world, "GET", f"{BASE}?resourceId=nope"), 400, "BadRequestError", "resourceId")


def test_a_job_id_that_is_no_job_is_404(world: Any) -> None:
    routes = [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/retry"),
        ("POST", "/cancel"),
        ("POST", "/sync"),
        ("POST", "/cleanup"),
    ]
    cases = [
        (method, f"{BASE}/{job_id}{suffix}", "", 404, "NotFoundError", "")
        for job_id in ["nope", "%2e%2e", "a%00b", "..%5c..", "64b7f0c2a1b2c3d4e5f60718"]
        for method, suffix in routes
    ]
    assert_each(world, cases)


def cursor_of(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


TAMPERED_CURSORS = [
    "abc",
    "!!!!",
    cursor_of(b"\xff\xfe"),
    cursor_of([1, 2]),
    cursor_of({"c": 12, "j": "x"}),
    cursor_of({"c": "not a date", "j": "x"}),
    cursor_of({"j": "x"}),
    cursor_of({"c": "0001-01-01T00:00:00+14:00", "j": "x"}),
    cursor_of(b"[" * 5000 + b"]" * 5000),
    "A" * 5000,
]


def test_a_tampered_cursor_is_400(world: Any) -> None:
    assert_each(world, [("GET", f"{BASE}?cursor={c}", "", 400, "BadRequestError", "cursor") for c in TAMPERED_CURSORS])


def test_a_cursor_with_a_flipped_character_is_400_or_a_page(api: Any, make_job: Any) -> None:
    """A cursor edited into another valid one pages from there: never a 5xx."""
    make_job(jobId="first")
    make_job(jobId="second")
    cursor = send(api, "GET", f"{BASE}?limit=1").json_body["nextCursor"]
    for index in range(len(cursor)):
        flipped = cursor[:index] + ("A" if cursor[index] != "A" else "B") + cursor[index + 1 :]
        response = send(api, "GET", f"{BASE}?limit=1&cursor={flipped}")
        assert response.status_code in (200, 400), (flipped, response.body)


def test_limit_out_of_range_is_400(world: Any) -> None:
    limits = ["0", "501", "-1", "abc", "1.5", "", "1e3", "99999999999999999999"]
    assert_each(world, [("GET", f"{BASE}?limit={limit}", "", 400, "BadRequestError", "limit") for limit in limits])


def test_bad_filters_are_400(world: Any) -> None:
    queries = ["bogus=1", "status=paused", "from=yesterday", "q=" + "x" * 201, "label=" + "x" * 65, "jobType=x"]
    assert_each(world, [("GET", f"{BASE}?{q}", "", 400, "BadRequestError", q.split("=")[0]) for q in queries])


# --- Path traversal -------------------------------------------------------------------------------

TRAVERSALS = {
    "dot-dot": "../../etc/passwd",
    "dot-dot-inside": "films/x/../../../etc",
    "absolute": "/etc/passwd",
    "backslash": "films\\..\\..\\etc",
    "url-encoded": "films/%2e%2e/%2e%2e/etc",
    "url-encoded-slash": "films%2f..%2fetc",
    "fullwidth-dots": "films/\uff0e\uff0e/etc",
    "one-dot-leader": "films/\u2025/etc",
    "division-slash": "films\u2215..\u2215etc",
    "fullwidth-solidus": "films\uff0f..\uff0fetc",
    "nul": "films/x\u0000/../etc",
}
# Every field that names a path, in a body whose job type reads it.
PATH_FIELDS = {
    "hlsDir": valid_body(),
    "subtitlePath": {"jobType": "upload-subtitle-to-s3", "resourceType": "film", "resourceId": RESOURCE},
    "subtitlePlaylistPath": {
        "jobType": "upload-subtitle-to-s3",
        "resourceType": "film",
        "resourceId": RESOURCE,
        "subtitlePath": "films/x/en.vtt",
    },
    "sourcePath": {"jobType": "upload-video-to-s3", "resourceType": "film", "resourceId": RESOURCE},
    "masterPlaylistPath": {"jobType": "upload-master-playlist", "resourceType": "film", "resourceId": RESOURCE},
    "uploadPath": valid_body(),
}


@pytest.mark.parametrize("field", sorted(PATH_FIELDS))
def test_path_traversal_in_every_path_field_is_400(world: Any, field: str) -> None:
    cases = [
        ("POST", BASE, {**PATH_FIELDS[field], field: value}, 400, "BadRequestError", field)
        for value in TRAVERSALS.values()
    ]
    assert_each(world, cases)


def test_path_traversal_in_filename_and_subtitle_language_is_400(world: Any) -> None:
    video = {**PATH_FIELDS["sourcePath"], "sourcePath": "films/x/movie.mp4"}
    subtitle = {**PATH_FIELDS["subtitlePlaylistPath"]}
    cases = [
        ("POST", BASE, {**video, "filename": value}, 400, "BadRequestError", "filename")
        for value in TRAVERSALS.values()
    ]
    cases += [
        ("POST", BASE, {**subtitle, "subtitleMetadata": {"language": value}}, 400, "BadRequestError", "language")
        for value in TRAVERSALS.values()
    ]
    assert_each(world, cases)


def test_a_staging_key_with_dot_dot_is_400(world: Any) -> None:
    body = json.dumps(valid_body(hlsDir="s3://staging/films/../../secrets"))
    assert_error(send(world, "POST", BASE, body), 400, "BadRequestError", "hlsDir")


def test_a_plain_relative_path_and_an_absolute_one_inside_the_root_are_accepted(api: Any, services: Any) -> None:
    """The rules above refuse what could be read as another path, not ordinary paths."""
    root = services.settings.source_root
    for index, hls_dir in enumerate(["films/Amélie/720p", f"{root}/films/x/720p"]):
        body = valid_body(hlsDir=hls_dir, uploadPath=f"custom/film-{index}/hls_720p")
        response = send(api, "POST", BASE, json.dumps(body))
        assert response.status_code == 201, response.body


# --- Tokens ---------------------------------------------------------------------------------------


def bad_tokens(secret: str) -> dict[str, str]:
    now = int(time.time())
    admin = {"sub": "a", "roles": ["admin"]}
    return {
        "alg-none": jwt.encode({**admin, "exp": now + 600}, key=None, algorithm="none"),
        "alg-none-signed-shape": jwt.encode({**admin, "exp": now + 600}, key=None, algorithm="none") + "c2ln",
        "wrong-alg-HS512": jwt.encode({**admin, "exp": now + 600}, secret * 2, algorithm="HS512"),
        "wrong-alg-HS384": jwt.encode({**admin, "exp": now + 600}, secret * 2, algorithm="HS384"),
        "expired": jwt.encode({**admin, "exp": now - 60}, secret, algorithm="HS256"),
        "nbf-in-future": jwt.encode({**admin, "exp": now + 600, "nbf": now + 600}, secret, algorithm="HS256"),
        "iat-no-exp": jwt.encode({**admin, "iat": now}, secret, algorithm="HS256"),
        "missing-exp": jwt.encode(admin, secret, algorithm="HS256"),
        "another-key": jwt.encode({**admin, "exp": now + 600}, "another-key-of-32-bytes-or-more!!", algorithm="HS256"),
        "garbage": "not.a.jwt",
        "empty-segments": "..",
    }


TOKEN_NAMES = sorted(bad_tokens("x" * 32))
TOKEN_ROUTES = [
    ("GET", BASE, ""),
    ("POST", BASE, json.dumps(valid_body(jobId="never-created"))),
    ("POST", f"{BASE}/clear", json.dumps({"status": "all"})),
    ("DELETE", f"{BASE}/finished", ""),
    ("POST", f"{BASE}/finished/cleanup", json.dumps({"removeSource": True})),
    ("POST", f"{BASE}/finished/retry", ""),
    ("POST", f"{BASE}/fix-stuck", ""),
]


@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_bad_tokens_are_401_and_change_nothing(world: Any, settings: Any, name: str) -> None:
    token = bad_tokens(settings.auth_jwt_secret)[name]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    wrong = []
    for method, path, body in TOKEN_ROUTES:
        response = send(world, method, path, body, headers)
        if response.status_code != 401 or json.loads(response.body).get("Code") != "UnauthorizedError":
            wrong.append(f"{method} {path}: {response.status_code} {response.body[:200]!r}")
    assert wrong == []


def test_the_finished_job_is_still_failed(world: Any, services: Any) -> None:
    """The fixture's job is what the checks above guard: it is there, failed, with its key."""
    job = services.store.get("finished")
    assert job.status == JobStatus.FAILED
    assert job.written_keys == ["films/x/hls/720p/seg0.ts"]


def test_path_traversal_in_a_dashboard_file_name_is_404(world: Any) -> None:
    names = ["..%2Fapp.py", "%2e%2e%2fapp.py", "..%5capp.py", "index.html", "app.py", "%00.js", "\uff0e\uff0e%2fapp.js"]
    assert_each(world, [("GET", f"/dashboard/{name}", "", 404, "NotFoundError", "") for name in names])
