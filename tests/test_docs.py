"""The README and docs speak to users: short README, links that resolve, no words about how the
project is run, and the README's two set-up commands as the first block."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_TEXT = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "recipes").glob("*.yaml")),
             *sorted((ROOT / "benchmarks" / "results").glob("*.md"))]
PROCESS_WORDS = re.compile(r"\bstop \d+|\bissue \d+|\bthe seed\b(?! \()|\bseed's\b|\bseed (?:CNN|network|model)\b",
                           re.IGNORECASE)


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    block = lines[lines.index("```bash") + 1:]
    commands = [line for line in block[:block.index("```")] if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("edgekit run recipes/quickstart.yaml --out runs/quickstart --force")
    assert commands[1].endswith("python -m pytest -q")


def test_no_process_words_in_user_facing_text():
    found = [f"{p.relative_to(ROOT)}:{i}: {m.group(0)}" for p in USER_TEXT
             for i, line in enumerate(p.read_text().splitlines(), 1) for m in [PROCESS_WORDS.search(line)] if m]
    assert not found, found


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", p.read_text()):
            if "://" not in target and not (p.parent / target).exists():
                broken.append(f"{p.relative_to(ROOT)} -> {target}")
    assert not broken, broken
