"""The hand-written $batch serializer and reply parser (used for every checkpoint)."""

from __future__ import annotations

import json

import pytest
from azure.data.tables import EdmType

from devhost.durable.taskhub.table_batch import (
    BatchError,
    BatchOperation,
    build_batch,
    entity_json,
    parse_batch_response,
)

OK_REPLY = (
    "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 204 No Content\r\nDataServiceVersion: 3.0;\r\n"
    "ETag: W/\"datetime'2024-01-01T00%3A00%3A00.1Z'\"\r\n\r\n\r\n"
    "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 201 Created\r\nETag: W/\"datetime'2024-01-01T00%3A00%3A00.2Z'\"\r\n\r\n\r\n"
    "--changesetresponse_2--\r\n--batchresponse_1--\r\n"
)
FAILED_REPLY = (
    "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 412 Precondition Failed\r\nContent-ID: 2\r\n"
    "Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
    '{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"1:nope"}}}\r\n'
    "--changesetresponse_2--\r\n--batchresponse_1--\r\n"
)


def test_entity_json_types() -> None:
    """Strings, Int32 and booleans go bare; DateTime, Int64 and Double carry @odata.type; None is left out."""
    body = json.loads(
        entity_json(
            {
                "PartitionKey": "p",
                "RowKey": "r",
                "S": "x",
                "I": 5,
                "B": False,
                "N": None,
                "D": ("2024-05-01T12:00:00.1234567Z", EdmType.DATETIME),
                "L": 2**40,
                "F": 1.5,
            }
        )
    )
    assert body == {
        "PartitionKey": "p",
        "RowKey": "r",
        "S": "x",
        "I": 5,
        "B": False,
        "D": "2024-05-01T12:00:00.1234567Z",
        "D@odata.type": "Edm.DateTime",
        "L": str(2**40),
        "L@odata.type": "Edm.Int64",
        "F": 1.5,
        "F@odata.type": "Edm.Double",
    }


def test_build_batch_quotes_keys_and_sets_conditions() -> None:
    """Keys are OData-quoted and percent-encoded; updates carry If-Match, creates ask for no content."""
    content_type, body = build_batch(
        "http://h/acct/",
        "T",
        [
            BatchOperation("upsert_replace", {"PartitionKey": "o'b^0", "RowKey": "0000000000000000"}),
            BatchOperation("update_merge", {"PartitionKey": "o'b^0", "RowKey": "sentinel"}, 'W/"x"'),
            BatchOperation("create", {"PartitionKey": "o'b^0", "RowKey": "sentinel"}),
            BatchOperation("delete", {"PartitionKey": "o'b^0", "RowKey": "r"}),
        ],
    )
    text = body.decode()
    assert content_type.startswith("multipart/mixed; boundary=batch_")
    assert "PUT http://h/acct/T(PartitionKey='o%27%27b%5E0',RowKey='0000000000000000') HTTP/1.1" in text
    assert "PATCH http://h/acct/T(PartitionKey='o%27%27b%5E0',RowKey='sentinel') HTTP/1.1\r\n" in text
    assert 'If-Match: W/"x"' in text and "If-Match: *" in text
    assert "POST http://h/acct/T HTTP/1.1" in text and "Prefer: return-no-content" in text
    assert text.count("Content-ID:") == 4 and text.endswith("--\r\n")


def test_parse_batch_reply() -> None:
    """ETags come back per operation; a failed changeset raises BatchError with status and code."""
    assert parse_batch_response(OK_REPLY) == [
        "W/\"datetime'2024-01-01T00%3A00%3A00.1Z'\"",
        "W/\"datetime'2024-01-01T00%3A00%3A00.2Z'\"",
    ]
    with pytest.raises(BatchError) as info:
        parse_batch_response(FAILED_REPLY)
    assert info.value.status == 412 and info.value.code == "UpdateConditionNotSatisfied"
