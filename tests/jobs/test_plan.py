"""The job's plan (``jobs.plan``): each kind's steps share out its progress whole and in order, and
each stage runs on a queue; the plan and the other words that pipelines and benchmarks read
import no Django."""

import pytest

from jobs import plan
from jobs.plan import JobKind, Stage
from tests.helpers.processes import fresh_python

DJANGO_FREE = ("jobs.plan", "jobs.options", "jobs.error_codes")


@pytest.mark.parametrize("kind", list(JobKind))
def test_a_kind_s_steps_share_out_its_progress_in_order_without_gap_or_overlap(kind):
    shares = [share for stage in plan.stages(kind) for share in plan.steps(kind, stage)]

    # 100 is written when the job ends, not by a step.
    assert (shares[0].start, shares[-1].end) == (0, 99)
    assert all(share.start <= share.end for share in shares)
    assert [share.start for share in shares[1:]] == [share.end for share in shares[:-1]]


def test_every_stage_runs_on_a_queue_and_in_a_kind_of_job():
    in_a_kind = {stage for kind in JobKind for stage in plan.stages(kind)}

    assert set(plan.QUEUES) == in_a_kind == set(Stage)


def test_the_words_the_pipelines_read_import_no_django():
    script = f"import sys\nimport {', '.join(DJANGO_FREE)}\nprint('django' in sys.modules)\n"

    assert fresh_python(script, timeout=60) == "False"
