#!/usr/bin/env python3
"""Prints the project headers that a header includes, directly or through
other project headers, one path per line relative to the source root (the
header itself excluded). Used by meson.build to install the public headers:
the closure of the umbrella convert/aimc.h.
    public_headers.py SOURCE_ROOT HEADER
A quoted include must name a file under SOURCE_ROOT; angle-bracket includes
are other packages' (listed in aimc.pc)."""
import pathlib
import re
import sys

QUOTED = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def main():
    root, start = pathlib.Path(sys.argv[1]), sys.argv[2]
    seen, todo = set(), [start]
    while todo:
        header = todo.pop()
        path = root / header
        if not path.is_file():
            sys.exit(f'public_headers.py: "{header}" is not a file under {root}')
        for name in QUOTED.findall(path.read_text()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    seen.discard(start)
    print('\n'.join(sorted(seen)))


main()
