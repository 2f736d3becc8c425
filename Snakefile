# Reproduction pipeline: one DAG from data to tables, claims, figures and report.
# Thin entry point; the rules live in workflow/rules/, the logic in src/repro/.
from snakemake.utils import min_version

min_version("9.0")


# --configfile replaces the default tier instead of being merged into it key by key
# (Snakemake's default merge would let test.yaml inherit default-tier experiments).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/optim.smk"
include: "workflow/rules/llm.smk"
include: "workflow/rules/dynamo.smk"
include: "workflow/rules/halfhop.smk"
include: "workflow/rules/neural.smk"
include: "workflow/rules/spectral.smk"
include: "workflow/rules/augtheory.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
