"""File handling shared by the conversion scripts: reading plain or gzip text, writing gzip JSON Lines."""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


class ConversionError(Exception):
    """A line or row of the input that cannot be converted; the message names the line."""


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzip file as text, choosing by its first two bytes."""
    with path.open("rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    if compressed:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def write_gzip_lines(path: Path, lines: Iterable[str]) -> int:
    """Write lines to a gzip file atomically, with a fixed header, and return how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as compressed:
                for line in lines:
                    compressed.write(line.encode("utf-8") + b"\n")
                    count += 1
        os.chmod(temporary, 0o644)  # mkstemp creates the file readable by its owner only, but the output is meant to be shared.
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def run_conversion(
    argv: list[str] | None,
    description: str,
    input_help: str,
    default_output: Path,
    convert: Callable[[Iterable[str]], Iterator[str]],
) -> int:
    """Parse the command line, convert INPUT into gzip JSON Lines at --out, and return the exit code."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input", type=Path, help=input_help)
    parser.add_argument("--out", type=Path, default=default_output, help=f"output file (default: {default_output})")
    arguments = parser.parse_args(argv)

    if not arguments.input.is_file():
        print(f"error: input file {arguments.input} not found", file=sys.stderr)
        return 1
    try:
        with open_text(arguments.input) as source:
            count = write_gzip_lines(arguments.out, convert(source))
    except (ConversionError, csv.Error, UnicodeDecodeError, OSError) as error:
        print(f"error: {arguments.input}: {error}. The output file was not written.", file=sys.stderr)
        return 1
    print(f"wrote {count} messages to {arguments.out}")
    return 0
