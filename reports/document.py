"""The document model every lrsweep report is written in: blocks that render as Markdown and as HTML.

A report is assembled once as a list of blocks (headings, paragraphs, bullet lists, tables, figures,
and boxes that group blocks, such as the verdict) and written twice, as Markdown (figures linked)
and as HTML (figures embedded as base64 PNG), so the two never disagree. The sweep report
(`reports.render`) and the reproduction report (`reports.reproduce`) both use it. Text carries
Markdown ``**bold**`` and ```code``` spans only; HTML renders them as such.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Heading:
    level: int
    text: str

    def markdown(self) -> str:
        return "#" * self.level + " " + self.text

    def html(self) -> str:
        return f"<h{self.level}>{inline(self.text)}</h{self.level}>"


@dataclass(frozen=True)
class Paragraph:
    """Text with Markdown **bold** and `code` spans (rendered as such in HTML)."""

    text: str

    def markdown(self) -> str:
        return self.text

    def html(self) -> str:
        return f"<p>{inline(self.text)}</p>"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]

    def markdown(self) -> str:
        return "\n".join(f"- {i}" for i in self.items)

    def html(self) -> str:
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in self.items) + "</ul>"


@dataclass(frozen=True, eq=False)
class Table:
    """A table of formatted cells: every cell of ``frame`` is a string (``Section.table`` makes it so)."""

    frame: pd.DataFrame

    def markdown(self) -> str:
        df = self.frame
        cell = lambda s: str(s).replace("|", "\\|")
        rows = ["| " + " | ".join(cell(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
        rows += ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
        return "\n".join(rows)

    def html(self) -> str:
        df = self.frame
        head = "".join(f"<th>{inline(c)}</th>" for c in df.columns)
        rows = "".join("<tr>" + "".join(f"<td>{inline(v)}</td>" for v in r) + "</tr>"
                       for r in df.itertuples(index=False))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


@dataclass(frozen=True)
class Figure:
    """A saved figure: linked from Markdown by its path relative to the report, embedded in HTML as base64 PNG."""

    png: str
    src: str
    alt: str

    def markdown(self) -> str:
        return f"![{self.alt}]({self.src})"

    def html(self) -> str:
        with open(self.png, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        alt = html.escape(self.alt)
        return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


@dataclass(frozen=True)
class Box:
    """Blocks shown together in a framed box (the verdict, the protocol, the warnings); ``kind`` is its
    HTML class and id, so a browser test can find it. In Markdown the blocks follow one another."""

    kind: str
    blocks: tuple

    def markdown(self) -> str:
        return "\n\n".join(b.markdown() for b in self.blocks)

    def html(self) -> str:
        inner = "\n".join(b.html() for b in self.blocks)
        return f'<div class="box {self.kind}" id="{self.kind}">\n{inner}\n</div>'


Block = Heading | Paragraph | Bullets | Table | Figure | Box


@dataclass
class Section:
    """What one part of a report produced: its blocks in order, its CSV tables and its figures by name."""

    out_dir: str
    blocks: list[Block] = field(default_factory=list)
    csvs: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, dict[str, str]] = field(default_factory=dict)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def p(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def ul(self, items: Sequence[str]) -> None:
        if items:  # an empty list is no block at all
            self.blocks.append(Bullets(tuple(items)))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(Table(frame.astype(str)))

    def box(self, kind: str, section: Section) -> None:
        """Put ``section``'s blocks in a box here, keeping its CSVs and figures."""
        self.blocks.append(Box(kind, tuple(section.blocks)))
        self.csvs.update(section.csvs)
        self.figures.update(section.figures)

    def extend(self, section: Section) -> None:
        """Append another section's blocks, CSVs and figures."""
        self.blocks += section.blocks
        self.csvs.update(section.csvs)
        self.figures.update(section.figures)

    def figure(self, draw, args: tuple, name: str, alt: str) -> None:
        """Draw ``draw(*args)`` (a figure function returning a Figure, or its dotted path) into
        ``plots/<name>.png`` (and ``.svg``: see `reports.drawing.writing`, which may draw it in a worker
        process) and show it here."""
        from reports import drawing

        saved = drawing.render(draw, args, os.path.join(self.out_dir, "plots"), name)
        self.add_figure(name, saved, alt)

    def add_figure(self, name: str, saved: dict[str, str], alt: str) -> None:
        """Show an already saved figure (``{"png": path, ...}``) here."""
        self.figures[name] = saved
        self.blocks.append(Figure(saved["png"], os.path.relpath(saved["png"], self.out_dir), alt))


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:1em auto;line-height:1.4}"
         "h1{margin:0.3em 0;font-size:1.5em}"
         "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#f0f0f0}"
         "img{max-width:100%}figure{margin:1em 0}"
         ".box{border:1px solid #999;border-radius:4px;padding:0.2em 1em;margin:0.6em 0}"
         ".box h2,.box h3{margin:0.4em 0}.box ul{margin:0.3em 0}"
         ".verdict{border-color:#2a6;background:#f4fbf6}.protocol{background:#f7f7f7;font-size:0.9em}"
         ".warnings{border-color:#c80;background:#fffaf0;font-size:0.9em}")


def markdown_page(blocks: Sequence[Block]) -> str:
    return "\n\n".join(b.markdown() for b in blocks) + "\n"


def html_page(blocks: Sequence[Block], title: str = "lrsweep report") -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(b.html() for b in blocks) + "\n</body></html>\n")


def write_pages(blocks: Sequence[Block], markdown_path: str, html_path: str, title: str) -> None:
    """Write the same blocks as a Markdown file and a self-contained HTML file."""
    with open(markdown_path, "w", encoding="utf-8") as f:
        f.write(markdown_page(blocks))
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(html_page(blocks, title))


def inline(text: str) -> str:
    """HTML-escape a cell or paragraph, rendering Markdown **bold** and `code` spans."""
    out, bold, code = [], False, False
    for i, part in enumerate(html.escape(str(text)).split("**")):
        if i:
            out.append("</b>" if bold else "<b>")
            bold = not bold
        pieces = part.split("`")
        for j, piece in enumerate(pieces):
            if j:
                out.append("</code>" if code else "<code>")
                code = not code
            out.append(piece)
    return "".join(out)
