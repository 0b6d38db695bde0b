#!/usr/bin/env python3
"""The ABI of a shared library is what it exports on purpose: every dynamic symbol it defines
(nm -D --defined-only) has one of the library's prefixes and is declared, with the library's
export macro, in one of its installed headers; and every function declared with the macro is
exported (else applications would fail to link against a declared function).

Usage: check-exports.py NM LIBRARY MACRO PREFIXES HEADER...
PREFIXES is a comma-separated list of symbol-name prefixes (regular expressions, anchored at the
start). Prints one line per problem and exits 1 when there is any."""
import re
import subprocess
import sys


def exported(nm, library):
    out = subprocess.run([nm, '-D', '--defined-only', library], check=True,
                         capture_output=True, text=True).stdout
    symbols = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3:
            symbols.add(fields[2].split('@')[0])
    return symbols


def declared(headers, macro):
    """Names of the functions and variables declared with @macro in @headers."""
    names = {}
    for header in headers:
        with open(header, encoding='utf-8') as f:
            text = f.read()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
        text = re.sub(r'//[^\n]*', ' ', text)
        # preprocessor lines (the macro's own definition), with their continuations
        text = re.sub(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', ' ', text, flags=re.M)
        # MACRO, a return type (no parentheses, braces or semicolons), the name, then "(" for a
        # function or ";" / "[" for a variable
        for m in re.finditer(r'\b' + re.escape(macro) + r'\b[^;{}()#]*?\b([A-Za-z_]\w*)\s*[(;\[]',
                             text):
            if not m.group(1).startswith('G_DECLARE_'):
                names.setdefault(m.group(1), header)
        # MACRO G_DECLARE_FINAL_TYPE (Name, prefix, ...) declares prefix_get_type()
        for m in re.finditer(r'\b' + re.escape(macro) +
                             r'\s+G_DECLARE_\w+_TYPE\s*\(\s*\w+\s*,\s*(\w+)\s*,', text):
            names.setdefault(m.group(1) + '_get_type', header)
    return names


def main():
    nm, library, macro, prefixes = sys.argv[1:5]
    headers = sys.argv[5:]
    prefix_re = re.compile('|'.join('(?:%s)' % p for p in prefixes.split(',')))
    symbols = exported(nm, library)
    decls = declared(headers, macro)
    problems = []
    if not symbols:
        problems.append('%s exports nothing' % library)
    for sym in sorted(symbols):
        if not prefix_re.match(sym):
            problems.append('%s exports %s, which has none of the prefixes %s'
                            % (library, sym, prefixes))
        elif sym not in decls:
            problems.append('%s exports %s, which no installed header declares with %s'
                            % (library, sym, macro))
    for name, header in sorted(decls.items()):
        if name not in symbols:
            problems.append('%s declares %s with %s, but %s does not export it'
                            % (header, name, macro, library))
    for p in problems:
        print(p)
    print('%s: %d exported symbols, %d declared with %s in %d headers, %d problems'
          % (library, len(symbols), len(decls), macro, len(headers), len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
