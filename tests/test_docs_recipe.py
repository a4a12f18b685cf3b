"""The retraining recipe in the README is the model card's, and both name the packaged model's version."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _first_sh_block_after(text: str, marker: str) -> str:
    start = text.index(marker)
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block, f"no ```sh block after {marker!r}"
    return block.group(1)


def recipe_commands(block: str) -> list[str]:
    """Shell commands of a recipe block: continuations joined, comments and spacing dropped, `pip` lines left out."""
    joined = re.sub(r"\\\n", " ", block)
    out = []
    for raw in joined.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        line = " ".join(re.sub(r"\s+#.*$", "", raw).split())
        if line and not line.startswith("pip "):
            out.append(line)
    return out


def test_recipe_commands_strip_comments_and_join_continuations() -> None:
    block = "# stage 1\nedge-convert train $DATA \\\n    --out runs/x   # resumable\npip install -e .\n"
    assert recipe_commands(block) == ["edge-convert train $DATA --out runs/x"]


def test_the_readme_recipe_is_the_model_cards_and_names_the_packaged_version() -> None:
    readme = (REPO / "README.md").read_text()
    card = (REPO / "MODEL_CARD.md").read_text()
    ours = recipe_commands(_first_sh_block_after(readme, "The recipe that made the shipped model"))
    theirs = recipe_commands(_first_sh_block_after(card, "## How it was made"))
    assert ours == theirs
    assert sum(c.startswith("edge-convert train ") for c in ours) >= 1
    version = json.loads((REPO / "edge_agent/models/attributes_int8.json").read_text())["version"]
    shipped = [c for c in ours if "--out edge_agent/models/attributes_int8.tflite" in c]
    assert len(shipped) == 1 and f"--model-version {version}" in shipped[0]
    assert card.splitlines()[0].startswith(f"# Model card: `edge-agent-attributes` {version} ")
