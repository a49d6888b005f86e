"""Every document the repository names is in it; every section cited exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = re.compile(r"(\.(py|md|toml|yaml|yml|sql)|(^|/)Makefile)$")
# a path or name ending in .md, or anything under docs/
REFERENCE = re.compile(
    r"(?<![\w.~-])/?(?:[\w.-]+/)*[\w.-]+\.md\b|(?<![\w/.-])docs/[\w./-]*\w"
)
CITATION = re.compile(
    r"((?:[\w.-]+/)*[\w-]+\.md)\s+§(\d+)(?:\s*(?:-|and|,)\s*§?(\d+))?"
)
SECTION = re.compile(r"^## (\d+)\.", re.M)
# Files the tool writes into a results directory, not documents of the repository.
GENERATED = {"report.md"}


def repository_files() -> list[Path]:
    """Text files of the working tree that git tracks or would track (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted({ROOT / p for p in listed if TEXT.search(p) and (ROOT / p).is_file()})


def resolves(ref: str, source: Path, names: set[str]) -> bool:
    """``ref`` is a repository file: from the root, from ``source``'s folder, or a bare
    file name that some repository file has."""
    if ref.startswith("/"):
        return False  # an absolute path always points outside the repository
    if ref in GENERATED or ref.endswith("/" + next(iter(GENERATED))):
        return True
    for base in (ROOT, source.parent):
        if (base / ref).resolve().is_relative_to(ROOT) and (base / ref).exists():
            return True
    return "/" not in ref and ref in names


@pytest.fixture(scope="module")
def files() -> list[Path]:
    # this file's own counterexamples (test_checks_catch_...) are not references
    found = [p for p in repository_files() if p != Path(__file__).resolve()]
    assert ROOT / "docs" / "science.md" in found
    return found


def test_every_named_document_exists(files):
    names = {p.name for p in files}
    bad = [
        f"{p.relative_to(ROOT)}:{n}: {ref}"
        for p in files
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        for ref in REFERENCE.findall(line)
        if not resolves(ref, p, names)
    ]
    assert bad == []


def test_every_section_citation_exists(files):
    sections: dict[Path, set[int]] = {}
    bad, cited = [], 0
    for p in files:
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            for doc, first, last in CITATION.findall(line):
                if Path(doc).name != "science.md":
                    continue  # other documents' sections are their owners' to check
                target = next(
                    (b / doc for b in (ROOT, p.parent) if (b / doc).is_file()), None
                )
                if target is None:
                    bad.append(f"{p.relative_to(ROOT)}:{n}: {doc} not found")
                    continue
                have = sections.setdefault(
                    target, {int(s) for s in SECTION.findall(target.read_text())}
                )
                cited += 1
                for s in (first, last):
                    if s and int(s) not in have:
                        bad.append(f"{p.relative_to(ROOT)}:{n}: {doc} §{s}")
    assert bad == [] and cited > 50


def test_checks_catch_a_missing_document_and_section():
    names = {"README.md"}
    assert not resolves("docs/nope.md", ROOT / "README.md", names)
    assert not resolves("/elsewhere/docs/science.md", ROOT / "README.md", names)
    assert resolves("science.md", ROOT / "docs" / "local_entropy.md", names)
    assert REFERENCE.findall("see docs/science.md. and notes.md") == [
        "docs/science.md",
        "notes.md",
    ]
    assert CITATION.findall("(docs/science.md §4-5; x.md §2 and §7)") == [
        ("docs/science.md", "4", "5"),
        ("x.md", "2", "7"),
    ]
