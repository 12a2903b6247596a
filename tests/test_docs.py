"""docs/api.md is what scripts/gen-api-docs.py makes of the current docstrings, and names every notification."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
API = ROOT / "docs" / "api.md"
# a notification name as the sources spell it, in code or docstrings
SC_NAME = re.compile(r"\bSC[A-Z][a-z][A-Za-z]+\b")


def generator():
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts" / "gen-api-docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_notification_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "sipsimple").rglob("*"):
        if path.suffix in (".py", ".pyx", ".pxi") and "__pycache__" not in path.parts:
            names |= set(SC_NAME.findall(path.read_text(errors="replace")))
    # a prefix used to build or match names (name.startswith("SCMessageDid")) is not a name
    return {n for n in names if not any(other != n and other.startswith(n) for other in names)}


def test_api_md_is_current():
    expected = generator().generate()
    assert API.exists(), "docs/api.md is missing; run python scripts/gen-api-docs.py"
    assert API.read_text() == expected, "docs/api.md is out of date; run python scripts/gen-api-docs.py"


def test_api_md_names_every_sc_notification():
    names = source_notification_names()
    assert len(names) > 30, sorted(names)  # the scan found the notifications at all
    text = API.read_text()
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"not in docs/api.md (document them in their module's docstring): {missing}"


def test_every_sc_notification_is_in_the_index():
    index = API.read_text().split("## Notifications", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", index, re.M))
    missing = sorted(source_notification_names() - listed)
    assert not missing, f"posted in the sources but documented in no module docstring: {missing}"


def test_docs_exist_and_link():
    for name in ("architecture.md", "api.md", "benchmarks.md"):
        assert (ROOT / "docs" / name).stat().st_size > 1000, name
    readme = (ROOT / "README.md").read_text()
    for name in ("docs/architecture.md", "docs/api.md", "docs/benchmarks.md"):
        assert name in readme, f"README.md does not point to {name}"


def test_readme_quick_start_runs(tmp_path):
    """The README's Python example is a working program: the call starts and the chat message arrives."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "quick_start.py").write_text(code)
    result = subprocess.run([sys.executable, "quick_start.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "SIPSIMPLE_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "codec: opus SRTP: True" in result.stdout and "got: hello, me" in result.stdout, result.stdout
