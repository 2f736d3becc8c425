"""Rule prepare_digits: scikit-learn's bundled digits as one .npz."""

from repro.data.images import prepare_digits
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_digits(snakemake.output[0])
