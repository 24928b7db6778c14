"""The images table: one status record per source object, keyed by bucket + key.

Every final write is conditional on the event's version (see ``S3ObjectEvent.version``): an
older delivery never overwrites newer state, and a duplicate of the stored version is refused,
so its side effects (notifications) are not repeated. A FAILED record may be replaced by the same
version's outcome, which is how a redriven message completes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SER = TypeSerializer()
_DESER = TypeDeserializer()

FINAL = frozenset({"DONE", "REJECTED", "FAILED", "DELETED"})

# Newer version, or the same version after a FAILED attempt, or nothing stored yet.
_NEWER = "attribute_not_exists(#k) OR #v < :v OR (#v = :v AND #s = :failed)"


def to_plain(value: Any) -> Any:
    """DynamoDB returns numbers as Decimal; callers and JSON want int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [to_plain(v) for v in value]
    return value


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _item(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(_to_dynamo(v)) for k, v in record.items() if v is not None}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = to_plain({k: _DESER.deserialize(v) for k, v in item.items()})
    return plain


def supersedes(stored: Mapping[str, Any] | None, version: str) -> bool:
    """Whether an event of ``version`` may still change ``stored`` (the pre-check that spares
    the work; the conditional write below is what guarantees it under races)."""
    if stored is None:
        return True
    current = str(stored.get("version", ""))
    return current < version or (current == version and stored.get("status") == "FAILED")


class Catalog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._ddb = client
        self._table = table

    def _key(self, bucket: str, key: str) -> dict[str, Any]:
        return {"bucket": {"S": bucket}, "key": {"S": key}}

    def put(self, record: Mapping[str, Any]) -> None:
        """Unconditional write (tests and tools; the pipeline uses ``write_if_newer``)."""
        self._ddb.put_item(TableName=self._table, Item=_item(record))

    def get(self, bucket: str, key: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(
            TableName=self._table, Key=self._key(bucket, key), ConsistentRead=True
        )
        item = resp.get("Item")
        return None if item is None else _plain(item)

    def page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        status: str | None = None,
        limit: int = 25,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` records of ``bucket`` in key order, and where the next page starts.
        A status filter is applied after the read, so a page may take several reads to fill."""
        names = {"#b": "bucket"}
        values: dict[str, Any] = {":b": {"S": bucket}}
        condition = "#b = :b"
        if prefix:
            condition += " AND begins_with(#k, :p)"
            names["#k"] = "key"
            values[":p"] = {"S": prefix}
        extra: dict[str, Any] = {}
        if status:
            extra["FilterExpression"] = "#s = :s"
            names["#s"] = "status"
            values[":s"] = {"S": status}
        items: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        exclusive = None if start is None else self._key(start["bucket"], start["key"])
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "Limit": limit - len(items),
                **extra,
            }
            if exclusive is not None:
                kwargs["ExclusiveStartKey"] = exclusive
            resp = self._ddb.query(**kwargs)
            items.extend(_plain(i) for i in resp.get("Items", []))
            exclusive = resp.get("LastEvaluatedKey")
            if exclusive is None or len(items) >= limit:
                break
        if exclusive is not None:
            last = {"bucket": exclusive["bucket"]["S"], "key": exclusive["key"]["S"]}
        return items, last

    def write_if_newer(self, record: Mapping[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        """Store ``record`` unless the table holds a newer or the same final version.
        Returns (written, the record it replaced)."""
        try:
            resp = self._ddb.put_item(
                TableName=self._table,
                Item=_item(record),
                ConditionExpression=_NEWER,
                ExpressionAttributeNames={"#k": "key", "#v": "version", "#s": "status"},
                ExpressionAttributeValues={
                    ":v": {"S": str(record["version"])},
                    ":failed": {"S": "FAILED"},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False, None
            raise
        old = resp.get("Attributes")
        return True, None if not old else _plain(old)

    def mark_notified(self, bucket: str, key: str, version: str) -> None:
        """Record that the notification for ``version`` went out (if it is still current)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key(bucket, key),
                UpdateExpression="SET notified = :t",
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":t": {"BOOL": True}, ":v": {"S": version}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
