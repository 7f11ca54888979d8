# The treelite path compiles tree models to C with TL2cgen, which calls the system's gcc.
# tests/unit/test_source_trees.py and tests/test_trees.py fail (instead of skipping) without it in CI.
if ! command -v gcc >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
fi
export NAVIGATOR_REQUIRE_GCC=1
