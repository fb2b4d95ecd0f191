"""The lean storage client: Shared Key signatures cross-checked against the SDKs' own policies,
connection-string parsing, retries, and the SDK fallback path for keyless credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from azure.data.tables._authentication import SharedKeyCredentialPolicy as TableSharedKeyPolicy
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue._shared.authentication import SharedKeyCredentialPolicy as QueueSharedKeyPolicy
from azure.storage.queue.aio import QueueServiceClient

from devhost.azurite import ACCOUNT, ACCOUNT_KEY, connection_string, free_port
from devhost.durable.history import OrchestrationStatus
from devhost.durable.taskhub import rest, storage_http, table_batch
from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
from devhost.durable.taskhub.base import InstanceUpdate
from devhost.durable.taskhub.storage_http import (
    DEV_ACCOUNT_KEY,
    StorageAccount,
    StorageHttp,
    for_clients,
    parse_connection_string,
)
from devhost.durable.taskhub.table_batch import BatchOperation, build_batch
from tests.devhost.taskhub.conftest import run
from tests.devhost.taskhub.samples import new_hub_name
from tests.local_server import local_server

QUEUE = "http://127.0.0.1:10001/devstoreaccount1"
TABLE = "http://127.0.0.1:10002/devstoreaccount1"
_ACCOUNT = StorageAccount(ACCOUNT, ACCOUNT_KEY, "http://127.0.0.1:10000/devstoreaccount1", QUEUE, TABLE)


def _sdk_signature(policy: object, method: str, url: str, headers: dict[str, str]) -> str:
    """The Authorization header the SDK's policy computes for the same request on its aiohttp transport."""
    unsigned = {name: value for name, value in headers.items() if name != "authorization"}
    request = PipelineRequest(HttpRequest(method, url, headers=unsigned), PipelineContext(AioHttpTransport()))
    policy.on_request(request)  # type: ignore[attr-defined]
    return str(request.http_request.headers["Authorization"])


QUEUE_CASES = [
    ("POST", f"{QUEUE}/q-control-00/messages?messagettl=-1&visibilitytimeout=5", b"<QueueMessage/>",
     {"Content-Type": "application/xml; charset=utf-8"}),
    ("GET", f"{QUEUE}/q-workitems/messages?numofmessages=32&visibilitytimeout=300", b"", {}),
    # Pop receipts are Base64: the percent-encoded '/', '+' and '=' must be signed decoded, as the SDK does.
    ("DELETE", f"{QUEUE}/q-workitems/messages/0a1b-2c?popreceipt=AgAAAA%2B%2FMAAAA%3D%3D", b"", {}),
    ("PUT", f"{QUEUE}/q-workitems/messages/0a1b-2c?popreceipt=AgA%2B%3D&visibilitytimeout=30", b"", {}),
]


@pytest.mark.parametrize(("method", "url", "body", "headers"), QUEUE_CASES)
def test_queue_signature_matches_sdk(method: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    http = StorageHttp(_ACCOUNT, "2021-02-12", "2019-02-02")
    signed = http.signed_headers(method, url, headers, body, table=False)
    assert signed["x-ms-version"] == "2021-02-12"
    assert signed["authorization"] == _sdk_signature(QueueSharedKeyPolicy(ACCOUNT, ACCOUNT_KEY), method, url, signed)


def _table_cases() -> list[tuple[str, str, bytes, dict[str, str]]]:
    accept = {"Accept": "application/json;odata=minimalmetadata", "DataServiceVersion": "3.0"}
    content_type, batch_body = build_batch(
        f"{TABLE}/", "HubHistory", [BatchOperation("upsert_replace", {"PartitionKey": "a", "RowKey": "b"})]
    )
    point = table_batch.entity_url(f"{TABLE}/", "HubInstances", "o'b^0 /+é", "")
    return [
        ("GET", point, b"", accept),
        ("GET", point + "?$select=ExecutionId,RuntimeStatus", b"", accept),
        ("PATCH", point, b'{"A":1}', {**accept, "Content-Type": "application/json"}),
        ("PUT", point, b'{"A":1}', {**accept, "Content-Type": "application/json"}),
        ("GET", f"{TABLE}/HubHistory()?$filter=PartitionKey%20eq%20%27x%27&NextRowKey=1%212", b"", accept),
        ("POST", f"{TABLE}/$batch", batch_body, {"Content-Type": content_type, "DataServiceVersion": "3.0"}),
        ("GET", f"{TABLE}/HubHistory?comp=acl", b"", {}),  # the one query parameter tables sign
    ]


@pytest.mark.parametrize(("method", "url", "body", "headers"), _table_cases())
def test_table_signature_matches_sdk(method: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    http = StorageHttp(_ACCOUNT, "2021-02-12", "2019-02-02")
    signed = http.signed_headers(method, url, headers, body, table=True)
    assert signed["x-ms-version"] == "2019-02-02"
    policy = TableSharedKeyPolicy(AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY))
    assert signed["authorization"] == _sdk_signature(policy, method, url, signed)


def test_table_resource_repeats_account_for_path_style_urls() -> None:
    """Azurite's path-style URLs carry the account in the path too; it is signed twice, as the SDK does."""
    text = storage_http.table_string_to_sign(
        ACCOUNT, "GET", "/devstoreaccount1/T()", "$filter=x&comp=list", {"x-ms-date": "D"}
    )
    assert text == "GET\n\n\nD\n/devstoreaccount1/devstoreaccount1/T()?comp=list"


def test_parse_connection_strings() -> None:
    dev = parse_connection_string("UseDevelopmentStorage=true")
    assert dev == StorageAccount(
        "devstoreaccount1",
        DEV_ACCOUNT_KEY,
        "http://127.0.0.1:10000/devstoreaccount1",
        "http://127.0.0.1:10001/devstoreaccount1",
        "http://127.0.0.1:10002/devstoreaccount1",
    )
    explicit = parse_connection_string(connection_string(1, 2, 3, host="localhost"))
    assert explicit == StorageAccount(
        ACCOUNT,
        ACCOUNT_KEY,
        "http://localhost:1/devstoreaccount1",
        "http://localhost:2/devstoreaccount1",
        "http://localhost:3/devstoreaccount1",
    )
    derived = parse_connection_string("defaultendpointsprotocol=https;AccountName=acct;AccountKey=a2V5;")
    assert derived is not None
    assert derived.queue_endpoint == "https://acct.queue.core.windows.net"
    assert derived.table_endpoint == "https://acct.table.core.windows.net"
    sovereign = parse_connection_string("AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn")
    assert sovereign is not None and sovereign.blob_endpoint == "https://acct.blob.core.chinacloudapi.cn"
    # SAS-only, keyless or malformed strings keep the SDK path.
    assert parse_connection_string("QueueEndpoint=https://a.queue.core.windows.net;SharedAccessSignature=sv=x") is None
    assert parse_connection_string("AccountName=acct") is None
    assert parse_connection_string("AccountName=acct;AccountKey=not base64!") is None
    assert parse_connection_string("garbage") is None


def test_lean_client_only_for_matching_sdk_clients() -> None:
    """The lean client is built only when the SDK clients talk to the parsed endpoints with a key."""
    keyed = connection_string(1, 2, 3)
    tables = TableServiceClient.from_connection_string(keyed)
    queues = QueueServiceClient.from_connection_string(keyed)
    http = for_clients(keyed, tables, queues)
    assert http is not None
    assert http.queue_version == queues.api_version and http.table_version == tables.api_version
    other = QueueServiceClient.from_connection_string(connection_string(1, 9, 3))
    assert for_clients(keyed, tables, other) is None
    sas = "TableEndpoint=http://127.0.0.1:3/devstoreaccount1;QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;"
    sas += "SharedAccessSignature=sv=2021&sig=x"
    assert for_clients(sas, tables, queues) is None


@pytest.fixture
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(storage_http, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    yield


def test_retries_server_errors_not_client_errors(no_retry_delay: None) -> None:
    """500/503 are retried (3 times at most); a 4xx answer is returned at once; no invented headers."""
    hits: dict[str, int] = {}

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        hits[name] = hits.get(name, 0) + 1
        assert request.headers["Authorization"].startswith(f"SharedKey {ACCOUNT}:")
        if not await request.read():
            # The service signs the Content-Type it receives; aiohttp must not invent one.
            assert "Content-Type" not in request.headers
        if name == "flaky" and hits[name] <= 2:
            return web.Response(status=503)
        if name == "down":
            return web.Response(status=500)
        if name == "bad":
            return web.Response(status=400, headers={"x-ms-error-code": "InvalidInput"})
        return web.Response(status=200, body=b"ok")

    async def scenario() -> None:
        async with local_server("/devstoreaccount1/{name}", handler) as port:
            http = StorageHttp(_ACCOUNT, "v", "v")
            base = f"http://127.0.0.1:{port}/devstoreaccount1"
            try:
                flaky = await http.send("GET", f"{base}/flaky", {}, table=False)
                assert (flaky.status, flaky.content, hits["flaky"]) == (200, b"ok", 3)
                down = await http.send("PUT", f"{base}/down", {}, b"x", table=True)
                assert (down.status, hits["down"]) == (500, 4)
                bad = await http.send("DELETE", f"{base}/bad", {}, table=False)
                assert (bad.status, bad.headers["X-MS-ERROR-CODE"], hits["bad"]) == (400, "InvalidInput", 1)
            finally:
                await http.close()

    run(scenario())


def test_connection_errors_become_azure_errors(no_retry_delay: None) -> None:
    from azure.core.exceptions import ServiceRequestError

    async def scenario() -> None:
        http = StorageHttp(_ACCOUNT, "v", "v")
        try:
            with pytest.raises(ServiceRequestError):
                await http.send("GET", f"http://127.0.0.1:{free_port()}/devstoreaccount1/x", {}, table=False)
        finally:
            await http.close()

    run(scenario())


def test_sdk_fallback_path_still_works(storage_connection: str) -> None:
    """Without a lean client (SAS/token credentials) the same calls go through the SDK pipelines."""

    async def scenario() -> None:
        hub = AzureStorageTaskHub(storage_connection, new_hub_name(), 1, lean_http=False)
        await hub.create_if_not_exists()
        try:
            queue = hub.queues.endpoints[hub.work_item_queue_name]
            instances, history = hub.instances.table, hub.history.table
            put = await rest.put_message(queue, "hello <&>", 0)
            [got] = await rest.get_messages(queue, 1, 30)
            assert (got.message_id, got.text) == (put.message_id, "hello <&>")
            receipt = await rest.update_visibility(queue, got.message_id, got.pop_receipt, 1)
            await rest.delete_message(queue, got.message_id, receipt)
            etag = await rest.upsert_entity(instances, {"PartitionKey": "p'1", "RowKey": "", "N": 1},
                                            replace=True)
            row = await rest.get_entity(instances, "p'1", "")
            assert row is not None and row["N"] == 1 and row.etag == etag
            assert await rest.get_entity(instances, "missing", "") is None
            etags = await table_batch.submit(
                history, [BatchOperation("upsert_replace", {"PartitionKey": "h", "RowKey": "0"})]
            )
            assert etags[0]
            assert [r["RowKey"] for r in await rest.query_partition(history, "h")] == ["0"]
            with pytest.raises(rest.StorageCallError) as failure:
                await rest.delete_message(queue, got.message_id, "bogus")
            assert failure.value.status in (400, 404)
        finally:
            await hub.delete_if_exists()
            await hub.close()

    run(scenario())


def test_lean_path_is_used_and_closed(storage_connection: str) -> None:
    """A keyed hub sends its hot calls on its own keep-alive connections (plain http: the small client,
    one connection for calls made one after another) and closes them with the hub."""

    async def scenario() -> None:
        hub = AzureStorageTaskHub(storage_connection, new_hub_name(), 1)
        http = hub._http
        assert http is not None
        await hub.create_if_not_exists()
        try:
            await hub.update_instance("i1", InstanceUpdate(runtime_status=OrchestrationStatus.Running))
            row = await hub.get_instance("i1")
            assert row is not None
            connections = set(http._plain._connections)
            assert len(connections) == 1 and not next(iter(connections)).closed
            assert http._session is None  # aiohttp only for https endpoints
        finally:
            await hub.delete_if_exists()
            await hub.close()
        assert all(c.closed for c in connections) and not http._plain._connections

    run(scenario())


def test_queue_replies_read_as_an_xml_parser_reads_them() -> None:
    """The regex reader of queue replies gives ElementTree's fields, or hands the reply to ElementTree."""
    import random
    from xml.sax.saxutils import escape

    def both(document: str) -> list[dict[str, str]]:
        content = document.encode("utf-8")
        fields = rest.queue_messages(content)
        assert fields == rest._fields_by_elementtree(content)
        return fields

    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    full = (f"{head}<QueueMessagesList><QueueMessage><MessageId>a-1</MessageId>"
            "<InsertionTime>Wed, 02 Dec 2026 02:04:02 GMT</InsertionTime><PopReceipt>AgA+/w==</PopReceipt>"
            "<DequeueCount>2</DequeueCount><MessageText>{&quot;a&quot;:&lt;1&gt; &amp; &apos;é&apos;}</MessageText>"
            "</QueueMessage><QueueMessage><MessageId>b</MessageId><MessageText></MessageText></QueueMessage>"
            "</QueueMessagesList>")
    assert both(full)[0]["MessageText"] == "{\"a\":<1> & 'é'}"
    assert both(f"{head}<QueueMessagesList />") == []
    # Character references and CRs (which XML reads as LF) go to the parser.
    assert both("<QueueMessagesList><QueueMessage><MessageText>a&#xD;b\r\nc</MessageText></QueueMessage>"
                "</QueueMessagesList>")[0]["MessageText"] == "a\rb\nc"
    both("<QueueMessagesList>\n <QueueMessage>\n  <MessageId>a</MessageId>\n </QueueMessage>\n</QueueMessagesList>")
    rng = random.Random(3)
    alphabet = "ab<>&\"' \té{}[]:,\\/\n\x7f€𝄞"
    for i in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
        [fields] = both(f"{head}<QueueMessagesList><QueueMessage><MessageId>m{i}</MessageId>"
                        f"<MessageText>{escape(text)}</MessageText></QueueMessage></QueueMessagesList>")
        assert fields["MessageText"] == text
