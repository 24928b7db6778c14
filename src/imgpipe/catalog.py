"""The images table: one status record per source object, keyed by bucket + key.

This module owns the mapping between ``ImageRecord`` and DynamoDB items. Every write replaces
exactly the record its writer read (compare-and-swap on ``revision``), and a pipeline write also
only if its event's version outranks it (see ``S3ObjectEvent.version``): an older delivery never
overwrites newer state, a duplicate of the stored version is refused, so its side effects
(notifications) are not repeated, and what the replaced record owned is handed to its successor
in the same write (see ``derived.successor``). A FAILED record may be replaced by the same
version's outcome, which is how a redriven message completes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .codec import Json, JsonObject
from .errors import ConditionFailed, translate
from .ordering import newer_condition
from .outcomes import Status
from .record import ImageRecord, from_document, to_document

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        PutItemInputTypeDef,
        QueryInputTypeDef,
        UpdateItemInputTypeDef,
    )

    Item = Mapping[str, AttributeValueTypeDef]

_SER = TypeSerializer()
_DESER = TypeDeserializer()


_FILTERED_READ = 100  # items evaluated per Query when a status filter is applied


@dataclass(frozen=True, slots=True)
class PageKey:
    """Where a page of ``Catalog.page`` ends (and the next starts)."""

    bucket: str
    key: str


def _plain(value: object) -> Json:
    """DynamoDB returns numbers as Decimal and lists of scalars as sets; JSON wants neither."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"unexpected {type(value).__name__} in an item")


def _dynamo(value: Json) -> object:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    return value


def to_item(record: ImageRecord) -> dict[str, AttributeValueTypeDef]:
    doc = to_document(record, internal=True)
    return {k: _SER.serialize(_dynamo(v)) for k, v in doc.items() if v is not None}


def from_item(item: Item) -> ImageRecord:
    doc: JsonObject = {k: _plain(_DESER.deserialize(v)) for k, v in item.items()}
    return from_document(doc)


class Catalog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._ddb = client
        self._table = table

    def _key(self, bucket: str, key: str) -> dict[str, AttributeValueTypeDef]:
        return {"bucket": {"S": bucket}, "key": {"S": key}}

    def put(self, record: ImageRecord) -> None:
        """Unconditional write (tests and tools; the pipeline uses ``write_if_newer``)."""
        self._ddb.put_item(TableName=self._table, Item=to_item(record))

    def get(self, bucket: str, key: str) -> ImageRecord | None:
        resp = self._ddb.get_item(
            TableName=self._table, Key=self._key(bucket, key), ConsistentRead=True
        )
        item = resp.get("Item")
        return None if item is None else from_item(item)

    def get_many(self, bucket: str, keys: list[str]) -> dict[str, ImageRecord]:
        """The records of ``keys`` (those that exist), by key: one BatchGetItem per 100 keys,
        reading only the fields that say which bytes a record is about and how it ended
        (eventually consistent: half the read units; callers re-check before acting)."""
        found: dict[str, ImageRecord] = {}
        for start in range(0, len(keys), 100):
            wanted = [self._key(bucket, k) for k in dict.fromkeys(keys[start : start + 100])]
            request: dict[str, KeysAndAttributesTypeDef] = {
                self._table: {
                    "Keys": wanted,
                    "ProjectionExpression": "#b, #k, #v, #s, etag, version_id, settings",
                    "ExpressionAttributeNames": {
                        "#b": "bucket",
                        "#k": "key",
                        "#v": "version",
                        "#s": "status",
                    },
                }
            }
            for attempt in range(8):
                resp = self._ddb.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self._table, []):
                    record = from_item(item)
                    found[record.key] = record
                unprocessed = resp.get("UnprocessedKeys", {})
                if not unprocessed:
                    break
                request = cast("dict[str, KeysAndAttributesTypeDef]", dict(unprocessed))
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise RuntimeError("DynamoDB left keys unread 8 times (throttled)")
        return found

    def page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        status: Status | None = None,
        limit: int = 25,
        start: PageKey | None = None,
        max_reads: int = 0,
    ) -> tuple[list[ImageRecord], PageKey | None]:
        """Up to ``limit`` records of ``bucket`` in key order, and where the next page starts.
        A status filter is applied after the read, so a page may take several reads to fill;
        ``max_reads`` (0: no cap) ends it early, with fewer records and a cursor, so that one
        request costs a bounded number of reads however rare the status is."""
        condition = "#b = :b"
        names = {"#b": "bucket"}
        values: dict[str, AttributeValueTypeDef] = {":b": {"S": bucket}}
        if prefix:
            condition += " AND begins_with(#k, :p)"
            names["#k"] = "key"
            values[":p"] = {"S": prefix}
        query: QueryInputTypeDef = {"TableName": self._table, "KeyConditionExpression": condition}
        if status is not None:
            query["FilterExpression"] = "#s = :s"
            names["#s"] = "status"
            values[":s"] = {"S": status.value}
        query["ExpressionAttributeNames"] = names
        query["ExpressionAttributeValues"] = values
        items: list[ImageRecord] = []
        reads = 0
        exclusive = None if start is None else self._key(start.bucket, start.key)
        while True:
            # A filtered read evaluates Limit items and returns the matches: read a good many
            # at once, keep what the page needs, and continue after the last one kept.
            query["Limit"] = max(limit - len(items), _FILTERED_READ if status else 0)
            if exclusive is not None:
                query["ExclusiveStartKey"] = exclusive
            resp = self._ddb.query(**query)
            found = [from_item(i) for i in resp.get("Items", [])]
            last = resp.get("LastEvaluatedKey")
            exclusive = None if last is None else dict(last)
            if len(items) + len(found) > limit:
                found = found[: limit - len(items)]
                exclusive = self._key(bucket, found[-1].key)
            items.extend(found)
            reads += 1
            if exclusive is None or len(items) >= limit or reads == max_reads:
                break
        if exclusive is None:
            return items, None
        return items, PageKey(str(exclusive["bucket"]["S"]), str(exclusive["key"]["S"]))

    def replace(
        self, record: ImageRecord, expected: ImageRecord | None, *, newer: bool = True
    ) -> bool:
        """Store ``record`` only if the table still holds ``expected`` (the record read before,
        by its revision; None: nothing), and, with ``newer``, only if ``record`` outranks it.
        False when another write came first: read again and decide again."""
        names = {"#k": "key"}
        values: dict[str, AttributeValueTypeDef] = {}
        if expected is None:
            condition = "attribute_not_exists(#k)"
        else:
            names["#r"] = "revision"
            if expected.revision:
                condition = "attribute_exists(#k) AND #r = :r"
                values[":r"] = {"N": str(expected.revision)}
            else:  # written before revisions existed
                condition = "attribute_exists(#k) AND attribute_not_exists(#r)"
            if newer:  # the order's own rule, as a condition (ordering.py)
                newer_than, newer_names, newer_values = newer_condition(record.version)
                condition += f" AND ({newer_than})"
                names.update(newer_names)
                values.update({name: {"S": text} for name, text in newer_values.items()})
        request: PutItemInputTypeDef = {
            "TableName": self._table,
            "Item": to_item(record),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._ddb.put_item(**request)
        except ClientError as exc:
            if isinstance(translate("dynamodb", exc), ConditionFailed):
                return False
            raise
        return True

    def _update_if_revision(
        self,
        record: ImageRecord,
        update: str,
        values: dict[str, AttributeValueTypeDef] | None = None,
    ) -> bool:
        names = {"#r": "revision"}
        values = dict(values or {})
        if record.revision:
            condition = "#r = :r"
            values[":r"] = {"N": str(record.revision)}
        else:
            condition = "attribute_not_exists(#r)"
        request: UpdateItemInputTypeDef = {
            "TableName": self._table,
            "Key": self._key(record.bucket, record.key),
            "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists(#k) AND {condition}",
            "ExpressionAttributeNames": {**names, "#k": "key"},
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._ddb.update_item(**request)
        except ClientError as exc:
            if isinstance(translate("dynamodb", exc), ConditionFailed):
                return False
            raise
        return True

    def mark_notified(self, record: ImageRecord) -> bool:
        """Record that ``record``'s outcome went out; False if it is no longer the stored one."""
        return self._update_if_revision(record, "SET notified = :t", {":t": {"BOOL": True}})

    def clear_cleanup(self, record: ImageRecord) -> bool:
        """Forget ``record``'s pending deletions once they are done (if it is still stored)."""
        return self._update_if_revision(record, "REMOVE cleanup")
