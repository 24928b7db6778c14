"""The images table: one status record per source object, keyed by bucket + key."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SER = TypeSerializer()
_DESER = TypeDeserializer()

STATUSES = ("DONE", "REJECTED", "FAILED", "DELETED")


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


class Catalog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._ddb = client
        self._table = table

    def put(self, record: Mapping[str, Any]) -> None:
        item = {k: _SER.serialize(_to_dynamo(v)) for k, v in record.items() if v is not None}
        self._ddb.put_item(TableName=self._table, Item=item)

    def get(self, bucket: str, key: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(
            TableName=self._table,
            Key={"bucket": {"S": bucket}, "key": {"S": key}},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        if item is None:
            return None
        plain: dict[str, Any] = to_plain({k: _DESER.deserialize(v) for k, v in item.items()})
        return plain
