"""report.html renders in headless Chromium: a non-blank screenshot, no console errors, and at
1400 px no table wider than its wrapper, with the deployment table on the page.

Two independent checks, because neither alone is robust:

1. Probe: a copy of report.html gets a small script injected at the top of <head> that
   records ``window.onerror`` (capture phase, so failed <img>/resource loads count too),
   unhandled promise rejections and ``console.error`` calls, and on ``load`` writes them,
   plus how many <img> elements decoded (``naturalWidth > 0``), as JSON into a <pre> that
   ``--dump-dom`` prints. The report itself is not modified: it ships without scripts.
2. Screenshot of the unmodified report with ``--enable-logging=stderr --v=0``: Chromium
   logs every page console message as ``INFO:CONSOLE``; any such line (errors, warnings,
   "Uncaught ...") fails the test. The PNG must not be blank: high pixel variance, many
   distinct colours, the dark header at the top and plot pixels further down.

3. Layout: the same probe idea at ``--window-size=1400,...``: a script opens every <details>, then
   writes into the DOM, for each table wrapper, its scrollWidth and clientWidth (a table wider
   than its wrapper scrolls, i.e. is clipped), and whether the deployment table is there.

Skips with a reason when Chromium is absent (Debian package ``chromium``).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.report.deploy_run import make_deploy_run

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]

PROBE = """<script>
(function () {
  var errs = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    errs.push(t && t !== window && (t.src || t.href) ? 'resource failed: ' + String(t.src || t.href).slice(0, 60)
                                                   : 'error: ' + e.message);
  }, true);
  window.addEventListener('unhandledrejection', function (e) { errs.push('unhandled rejection: ' + e.reason); });
  var ce = console.error;
  console.error = function () { errs.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
                                ce.apply(console, arguments); };
  window.addEventListener('load', function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } }
    var d = document.createElement('pre');
    d.id = 'edgekit-probe';
    d.textContent = JSON.stringify({errors: errs, images: imgs.length, decoded: ok,
                                    height: document.documentElement.scrollHeight});
    document.body.appendChild(d);
  });
})();
</script>"""


def chromium(args: list[str], profile: Path, timeout: int = 90) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    from edgekit.gate import GateConfig, run_gates
    from edgekit.manifest import update_manifest
    from edgekit.report import write_report

    run = make_deploy_run(tmp_path_factory.mktemp("chromium") / "run")
    gates = run_gates(run, GateConfig(targets=("tflite-int8",), max_size=40_000, max_latency_ms=0.03))
    update_manifest(run.parent, "gates", config=gates.config, metrics=gates.to_dict())
    return write_report(run.parent)[1]


def test_no_console_errors_and_every_plot_decodes(report_html, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(report_html.read_text().replace("<head>", "<head>" + PROBE, 1))
    out = chromium(["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], tmp_path / "profile")
    m = re.search(r'<pre id="edgekit-probe">(.*?)</pre>', out.stdout, re.S)
    assert m, f"probe did not run; chromium rc={out.returncode}: {out.stderr[-800:]}"
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    assert result["images"] == 4 and result["decoded"] == 4  # training curves, sizes, drop vs size, latency
    assert result["height"] > 2000  # the whole report laid out, not an error page


def test_probe_catches_errors(tmp_path):
    """The probe itself works: a broken image and a script error are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head>" + PROBE + '</head><body><img src="data:image/png;base64,AAAA">'
                   "<script>undefinedThing.call();</script></body></html>")
    out = chromium(["--virtual-time-budget=5000", "--dump-dom", bad.as_uri()], tmp_path / "profile")
    result = json.loads(re.search(r'<pre id="edgekit-probe">(.*?)</pre>', out.stdout, re.S).group(1)
                        .replace("&quot;", '"').replace("&amp;", "&"))
    assert result["decoded"] == 0
    assert any("undefinedThing" in e for e in result["errors"])
    assert any(e.startswith("resource failed") for e in result["errors"])


def test_screenshot_is_not_blank(report_html, tmp_path):
    shot = tmp_path / "report.png"
    out = chromium(["--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1200,2000",
                    report_html.as_uri()], tmp_path / "profile")
    assert shot.is_file(), f"no screenshot; chromium rc={out.returncode}: {out.stderr[-800:]}"
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == []
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]  # float RGB in [0, 1]
    assert img.shape == (2000, 1200, 3)
    assert img.std() > 0.1
    colours = np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text antialiasing, plot lines and markers, tinted table rows
    header = img[10:60, 10:600].mean(axis=(0, 1))
    assert header.max() < 0.25  # the dark title bar
    body = img[600:2000]
    assert (body.mean(axis=2) < 0.9).mean() > 0.03  # text, tables and plots below the fold
    # saturated colours of the plots and the PASS/FAIL marks (not only grey text)
    saturation = img.max(axis=2) - img.min(axis=2)
    assert (saturation > 0.3).sum() > 2000


LAYOUT = """<script>
window.addEventListener('load', function () {
  var ds = document.querySelectorAll('details');
  for (var i = 0; i < ds.length; i++) { ds[i].open = true; }
  var out = [], ws = document.querySelectorAll('.tw');
  for (var j = 0; j < ws.length; j++) {
    var w = ws[j], sec = w.closest('section');
    out.push({section: sec ? sec.id : '', scroll: w.scrollWidth, client: w.clientWidth,
              table: w.querySelector('table').getBoundingClientRect().width});
  }
  var dep = document.querySelector('#deployment table');
  var d = document.createElement('pre');
  d.id = 'edgekit-layout';
  d.textContent = JSON.stringify({viewport: window.innerWidth, wrappers: out,
                                  deployment: dep ? dep.innerText : null,
                                  first: document.querySelector('main section').id});
  document.body.appendChild(d);
});
</script>"""


def test_no_table_overflows_at_1400px_and_the_deployment_table_leads(report_html, tmp_path):
    page = tmp_path / "layout.html"
    page.write_text(report_html.read_text().replace("</body>", LAYOUT + "</body>", 1))
    out = chromium(["--window-size=1400,1000", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                   tmp_path / "profile")
    m = re.search(r'<pre id="edgekit-layout">(.*?)</pre>', out.stdout, re.S)
    assert m, f"layout probe did not run; chromium rc={out.returncode}: {out.stderr[-800:]}"
    import html

    result = json.loads(html.unescape(m.group(1)))
    assert result["viewport"] == 1400
    assert result["first"] == "deployment"
    assert len(result["wrappers"]) >= 10  # every table, the ones in opened <details> included
    clipped = [w for w in result["wrappers"] if w["scroll"] > w["client"]]
    assert clipped == []
    dep = result["deployment"]
    assert dep and "9/9 ops on chip" in dep and "18,896 B" in dep and "µs" in dep
