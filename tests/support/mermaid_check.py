"""Draw Mermaid blocks with mermaid itself (the npm package) in headless Chromium: the test
of a diagram is that the real renderer draws it, not that it looks right to a regex."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MERMAID_JS = REPO_ROOT / ".cache" / "mermaid" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
BLOCK = re.compile(r"```mermaid\n(.*?)```", re.S)


def blocks(markdown: str) -> list[str]:
    return BLOCK.findall(markdown)


def tools() -> tuple[str, Path] | str:
    """(chromium, mermaid.min.js), or why they cannot be had here."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    script = Path(os.environ.get("ORCH_MERMAID_JS", MERMAID_JS))
    if chromium is None:
        return "chromium is not installed (Debian package 'chromium'; make test installs it)"
    if not script.is_file():
        return f"mermaid is not installed at {script} (make test runs npm install mermaid)"
    return chromium, script


def _page(diagrams: list[str], script: Path) -> str:
    sources = json.dumps(diagrams)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<script src="file://{html.escape(str(script))}"></script></head>
<body style="background:white"><pre id="result">pending</pre><div id="out"></div>
<script>
mermaid.initialize({{startOnLoad: false, securityLevel: "strict"}});
(async () => {{
  const results = [];
  const sources = {sources};
  for (let i = 0; i < sources.length; i++) {{
    try {{
      const {{svg}} = await mermaid.render("d" + i, sources[i]);
      const box = document.createElement("div");
      box.innerHTML = svg;
      document.getElementById("out").appendChild(box);
      results.push("ok");
    }} catch (e) {{ results.push("error: " + (e && e.message ? e.message : String(e))); }}
  }}
  document.getElementById("result").textContent = "RESULTS " + JSON.stringify(results);
}})();
</script></body></html>"""


def draw(diagrams: list[str], workdir: Path, screenshot: Path | None = None) -> list[str]:
    """'ok' or 'error: ...' per diagram, as mermaid reported it while drawing."""
    found = tools()
    assert not isinstance(found, str), found
    chromium, script = found
    page = workdir / "mermaid.html"
    page.write_text(_page(diagrams, script), encoding="utf-8")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={workdir / 'profile'}",
            "--allow-file-access-from-files", "--virtual-time-budget=20000"]
    proc = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    match = re.search(r"RESULTS (\[.*?\])</pre>", proc.stdout, re.S)
    assert match, f"chromium drew nothing: {proc.stderr[-2000:]}"
    if screenshot is not None:
        subprocess.run([*args, f"--screenshot={screenshot}", "--window-size=1400,2400",
                        page.as_uri()], capture_output=True, timeout=120)
    return [str(r) for r in json.loads(html.unescape(match[1]))]
