"""`imgpipe reconcile`: do the buckets and the catalog agree?"""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from ..backfill import requeuer
from ..catalog import Catalog
from ..reconcile import Reconciler
from ..storage import ObjectStore
from . import deployment, echo_json, printable, table, target_options


@click.command()
@click.option("--fix", is_flag=True, help="repair each finding and say what was done")
@click.option("--prefix", default="", help="only source keys starting with this")
@click.option(
    "--min-age",
    type=click.IntRange(min=0),
    default=900,
    show_default=True,
    help="seconds: younger objects and records may still be in flight and are not judged",
)
@target_options
def reconcile(
    fix: bool, prefix: str, min_age: int, stage: str, endpoint: str | None, as_json: bool
) -> None:
    """Compare the uploads bucket, the catalog and the derived bucket.

    Reports records whose source is gone (no_source), sources without a final record of their
    current bytes (unprocessed), thumbnails no live version owns (orphan) and results documents
    no live version owns or that describe another version (stale_result). With --fix: marks
    the record DELETED, re-queues the source (a backfill message through the stage's backfill
    function; the object is not touched), deletes or rewrites the derived object. Exits 1
    while findings remain unrepaired."""
    dep = deployment(stage, endpoint)

    def progress(message: str) -> None:
        if not as_json:
            click.echo(f"  {message}", err=True)

    reconciler = Reconciler(
        ObjectStore(dep.client("s3")),
        Catalog(dep.client("dynamodb"), dep.table),
        dep.uploads_bucket,
        dep.derived_bucket,
        min_age=timedelta(seconds=min_age),
        progress=progress,
        requeue=requeuer(dep.client("lambda"), dep.backfill_function) if fix else None,
    )
    report = reconciler.run(prefix, fix=fix)
    if as_json:
        echo_json(report.to_document())
    else:
        if report.findings:
            rows = [("finding", "key", "detail", "fixed")]
            rows += [
                (f.kind, printable(f.key), printable(f.detail), f.fixed or f.error or "-")
                for f in report.findings
            ]
            click.echo(table(rows))
        if report.left_out:
            click.echo(f"... and {report.left_out} more findings (counted below, not listed)")
        click.echo(report.line())
    sys.exit(1 if report.unresolved else 0)
