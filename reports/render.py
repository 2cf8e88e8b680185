"""Writing a :class:`rope_suite.reports.model.Report`: self-contained HTML and its Markdown twin.

HTML comes from a Jinja2 template with autoescaping on, so every string that came from a
results file (implementation names, reasons, versions) is escaped; figures are inline PNG data
URIs; a Content-Security-Policy allows nothing from the network and only the page's own
script (a render check that counts the images that decoded and the tables). Markdown cells
are escaped for both Markdown and HTML; its figures are PNG files in a folder beside it.
Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from .model import Figure, Report, Table
from .results import write_atomic

# Sets body[data-render-check] to "images N/M; tables T; rows R" once the page has loaded
# (what the headless-browser test reads back).
RENDER_CHECK_JS = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var tables = document.querySelectorAll("table").length;
  var rows = document.querySelectorAll("table tbody tr").length;
  document.body.setAttribute("data-render-check",
    "images " + decoded + "/" + images.length + "; tables " + tables + "; rows " + rows);
});
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_text(report: Report) -> str:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.PackageLoader("rope_suite.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    digest = base64.b64encode(hashlib.sha256(RENDER_CHECK_JS.encode()).digest()).decode()
    return env.get_template("report.html.j2").render(report=report, data_uri=data_uri,
                                                     script=Markup(RENDER_CHECK_JS), script_hash=f"sha256-{digest}")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|~])")


def md(text: str) -> str:
    """``text`` safe in a Markdown table cell: Markdown punctuation backslash-escaped, HTML
    escaped (GitHub renders inline HTML), one line."""
    return html.escape(_MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split())), quote=False)


def markdown_text(report: Report, plots_dir: str) -> str:
    lines = [f"# {md(report.title)}", "", f"Generated {md(report.generated)} from "
             f"{md(', '.join(report.sources))}. The HTML twin of this page embeds the same figures.", ""]
    lines += [f"- [{md(s.title)}](#{s.anchor})" for s in report.sections] + [""]
    for section in report.sections:
        lines += [f'<a id="{section.anchor}"></a>', "", f"## {md(section.title)}", ""]
        for paragraph in section.intro:
            lines += [md(paragraph), ""]
        for subtitle, block in section.blocks:
            if subtitle:
                lines += [f"### {md(subtitle)}", ""]
            if isinstance(block, Figure):
                lines += [f"![{md(block.alt)}]({plots_dir}/{block.name}.png)", ""]
            else:
                lines += [_md_table(block), ""]
    return "\n".join(lines)


def _md_table(table: Table) -> str:
    out = ["| " + " | ".join(md(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    out += ["| " + " | ".join(md(cell.text) for cell in row) + " |" for row in table.rows]
    return "\n".join(out)


def write(report: Report, output: str | Path) -> tuple[Path, Path]:
    """Write ``output``.html, ``output``.md and the Markdown's figures in ``output``-plots/;
    returns the two pages' paths."""
    output = Path(output)
    stem = output.name[:-len(output.suffix)] if output.suffix in (".html", ".md") else output.name
    html_path, md_path = output.with_name(stem + ".html"), output.with_name(stem + ".md")
    plots = output.with_name(stem + "-plots")
    plots.mkdir(parents=True, exist_ok=True)
    names = set()
    for section in report.sections:
        for _, block in section.blocks:
            if isinstance(block, Figure):
                write_atomic(plots / f"{block.name}.png", block.png)
                names.add(f"{block.name}.png")
    for stale in plots.glob("*.png"):
        if stale.name not in names:
            stale.unlink()
    write_atomic(html_path, html_text(report))
    write_atomic(md_path, markdown_text(report, plots.name))
    return html_path, md_path
