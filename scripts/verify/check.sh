# Run one check of the catalogue against the running lab and keep its evidence under
# artifacts/<stack>/ (a verdict JSON, pcaps, report.md). A FAIL exits non-zero, which fails
# `pulumi up` and shows the facts, the commands and their output.
# Environment: LAB_STACK, LAB_CHECK, LAB_CONTROL_PLANE, LAB_TOPOLOGY (JSON), LAB_ARTIFACTS.
set -euo pipefail
exec .venv/bin/python -m verify run --kind --stack "$LAB_STACK" --check "$LAB_CHECK" \
  --control-plane "$LAB_CONTROL_PLANE" --artifacts "$LAB_ARTIFACTS"
