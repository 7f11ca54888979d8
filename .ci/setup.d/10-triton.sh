# A real tritonserver (python backend) and perf_analyzer for tests/test_serving.py (tools/install-triton.sh).
# The python backend runs model.py in the interpreter whose libpython the wrapper puts first: the same
# Python 3 the README's venv is made from.
export NAVIGATOR_TRITON_HOME="${NAVIGATOR_TRITON_HOME:-$HOME/.cache/navigator/triton}"
PYTHON=python3 bash tools/install-triton.sh "$NAVIGATOR_TRITON_HOME"
export NAVIGATOR_REQUIRE_TRITON=1
