"""MkDocs hooks: the generated parts of the pages, and the figures of `plots/`.

A marker ``<!-- generated: NAME -->`` in a page becomes `toymodels.reference.GENERATED[NAME]()`
(every key, variable, plot kind, zoo model and command, read from their registries); the
PNGs of the repository's `plots/` folder are served at `plots/` so that pages show the
figures `toymodels reproduce` draws, without a copy in `docs/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

from toymodels.reference import GENERATED

MARKER = re.compile(r"<!-- generated: (\w+) -->")
PLOTS = Path(__file__).resolve().parents[1] / "plots"


def on_page_markdown(markdown, page, config, files):
    def render(match):
        name = match.group(1)
        if name not in GENERATED:
            raise ValueError(f"{page.file.src_uri}: unknown generated part {name!r}; "
                             f"known: {', '.join(GENERATED)}")
        return GENERATED[name]()
    return MARKER.sub(render, markdown)


def on_files(files, config):
    for png in sorted(PLOTS.glob("*.png")):
        files.append(File(f"plots/{png.name}", str(PLOTS.parent), config["site_dir"],
                          config["use_directory_urls"]))
    return files
