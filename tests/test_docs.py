"""Docs that cannot go stale: every command and every rule is in the README."""
import re
from pathlib import Path

from pipeline.cli import main
from pipeline.rules import all_rules, markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def _commands(group, prefix="recon"):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


def test_readme__lists_every_command():
    text = README.read_text(encoding="utf-8")
    missing = [c for c in _commands(main) if f"`{c}" not in text]
    assert not missing, f"README.md lacks commands: {missing}"


def test_readme__rule_catalogue_is_current():
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- rules:start -->\n(.*?)<!-- rules:end -->", text, re.S)
    assert m, "README.md lacks the rule catalogue block"
    assert m.group(1) == markdown_table(), (
        "README rule catalogue is stale: replace the block with `recon rules --format markdown`")
    assert len(all_rules()) >= 1


def test_readme__set_up_is_two_commands_and_ci_runs_the_second():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Set up.*?```sh\n(.*?)```", text, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["pip install -e . && recon run", "pip install -e '.[test]' && pytest"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci
