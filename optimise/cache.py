"""``optimise cache info|clear``: the stage-1 cache on disk (:mod:`objectives.disk_cache`)."""

from __future__ import annotations

import argparse

from objectives.disk_cache import CACHE_DIR_ENV, open_cache


def run_cache(args: argparse.Namespace) -> int:
    """``info``: the folder, its entries and bytes, and the bound; ``clear``: delete every
    entry, in one line. A cache turned off (``--cache-dir none``) says so."""
    cache = open_cache(args.cache_dir, args.cache_size)
    if cache is None:
        print(f"stage-1 cache: off (--cache-dir none or ${CACHE_DIR_ENV}=none)")
        return 0
    if args.cache_command == "clear":
        entries, size = cache.clear()
        print(f"stage-1 cache: removed {entries} entries ({human(size)}) from {cache.root}")
        return 0
    info = cache.info()
    print(f"stage-1 cache: {info.folder}")
    print(f"entries: {info.entries}")
    print(f"bytes: {info.bytes} ({human(info.bytes)})")
    print(f"bound: {info.max_bytes} ({human(info.max_bytes)})")
    return 0


def human(size: int) -> str:
    """``size`` bytes in B, KiB, MiB, GiB or TiB, three significant digits."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"
