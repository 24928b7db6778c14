"""The burst model behind `make bench-aws`: it must schedule like the mapping it describes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import aws_model
from bench.aws_model import Shape, burst, stage_params

SHAPE = Shape(batch=10, concurrency=10, lanes=4, cpu_s=0.1, detectors=2, call_s=0.4)


def test_every_upload_gets_one_time_after_it_is_queued() -> None:
    times = burst(100, SHAPE)
    assert len(times) == 100
    first_possible = aws_model.S3_TO_SQS_S + aws_model.POLL_S + aws_model.COLD_START_S
    assert min(times) >= first_possible + aws_model.REQUEST_S + SHAPE.cpu_s + SHAPE.call_s


def test_detectors_asked_in_turn_wait_for_each_call() -> None:
    at_once, in_turn = burst(10, SHAPE), burst(10, replace(SHAPE, parallel=False))
    assert in_turn[0] - at_once[0] == pytest.approx(0.4)  # the first image: one call more
    assert sum(in_turn) > sum(at_once)


def test_one_environment_works_batches_one_after_another_and_warm() -> None:
    one = sorted(burst(20, Shape(10, 1, 1, 0.1, 0, 0.0)))
    per_record = aws_model.REQUEST_S + 0.1 + 4 * aws_model.REQUEST_S
    start = aws_model.S3_TO_SQS_S + aws_model.POLL_S + aws_model.COLD_START_S
    assert one[-1] == pytest.approx(start + 20 * per_record)  # one cold start, not two


def test_only_five_environments_start_at_once_then_the_mapping_scales() -> None:
    quick = Shape(batch=1, concurrency=10, lanes=1, cpu_s=0.0, detectors=0, call_s=0.0)
    times = sorted(burst(10, quick))
    first_wave = times[:5]
    assert max(first_wave) - min(first_wave) == pytest.approx(0.0)
    assert times[5] > times[4]  # the sixth waits for the scaling (or a warm environment)


def test_more_concurrency_and_lanes_only_help() -> None:
    base = sum(burst(100, SHAPE))
    assert sum(burst(100, Shape(10, 20, 4, 0.1, 2, 0.4))) <= base
    assert sum(burst(100, Shape(10, 10, 8, 0.1, 2, 0.4))) <= base
    assert sum(burst(100, Shape(10, 2, 4, 0.1, 2, 0.4))) > base


def test_reads_the_stage_defaults_from_the_template() -> None:
    params = stage_params()
    assert int(params["maxConcurrency"]) >= 1
    assert "backfillRate" in params
    stage = aws_model.default_stage(params)
    assert stage.memory_mb == int(params["processMemory"])


def test_model_lines_name_what_bounds_a_backfill() -> None:
    lines = aws_model.backfill_lines(90.0, 75.0)
    assert "bound by the send rate" in lines[1]
    assert "labels off" in lines[3]
    assert "$23" in lines[3]  # no Rekognition: the pipeline's own cost per million
