#!/usr/bin/env python3
"""Prints the directory from which the compiler includes <HEADER>, or nothing
when that directory is one the compiler searches by default (so aimc.pc needs
no -I for it). Random123 ships no pkg-config file; meson.build uses this for
aimc.pc's Cflags.
    header_dir.py COMPILER [ARGS...] HEADER"""
import os
import pathlib
import subprocess
import sys
import tempfile


def default_dirs(compiler):
    # The built-in search list: the compiler without our flags (its leading
    # words, e.g. "ccache c++") and without the environment's additions (CPATH).
    words = []
    for word in compiler:
        if word.startswith('-'):
            break
        words.append(word)
    env = {k: v for k, v in os.environ.items() if k not in ('CPATH', 'CPLUS_INCLUDE_PATH')}
    out = subprocess.run(words + ['-x', 'c++', '-E', '-v', '-'], input='', capture_output=True, text=True,
                         env=env).stderr
    lines = out.splitlines()
    start = lines.index('#include <...> search starts here:') + 1
    end = lines.index('End of search list.')
    return {pathlib.Path(line.strip()).resolve() for line in lines[start:end]}


def main():
    *compiler, header = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / 'probe.cpp'
        source.write_text(f'#include <{header}>\n')
        deps = subprocess.run(compiler + ['-x', 'c++', '-M', str(source)], capture_output=True, text=True,
                              check=True).stdout
    for word in deps.replace('\\\n', ' ').split():
        if word.endswith('/' + header):
            directory = pathlib.Path(word[:-len(header) - 1]).resolve()
            if directory not in default_dirs(compiler):
                print(directory)
            return
    sys.exit(f'header_dir.py: <{header}> not found')


main()
