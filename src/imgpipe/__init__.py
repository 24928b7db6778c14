"""imgpipe: serverless image pipeline (S3 -> SQS -> Lambda -> thumbnails, metadata, status)."""

__version__ = "0.1.0"
