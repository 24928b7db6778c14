"""The images table as serverless.yml defines it, for moto in-process (unit tests, benches)."""

from __future__ import annotations

from typing import Any


def create_images_table(ddb: Any, name: str = "images") -> None:
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "bucket", "AttributeType": "S"},
            {"AttributeName": "key", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "bucket", "KeyType": "HASH"},
            {"AttributeName": "key", "KeyType": "RANGE"},
        ],
    )
