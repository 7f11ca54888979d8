# Headless Chromium and its WebDriver (Debian packages) for tests/test_report_html.py, which opens
# report.html in a real browser. Exported NAVIGATOR_REQUIRE_CHROMIUM=1 makes that test fail, not skip,
# when the browser is missing.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
fi
export NAVIGATOR_REQUIRE_CHROMIUM=1
