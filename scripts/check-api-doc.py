#!/usr/bin/env python3
"""Checks docs/api.md against include/cfutures.h: every public name is documented, every
function has its own heading and its prototype as in the header, every typedef'd enum and
struct and every public #define block is reproduced as in the header, and the error
table matches CF_ERRNO_MAP.  Exit status 1 and one line per problem otherwise."""
import re, sys, pathlib

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else '.')
hdr = (root / 'include/cfutures.h').read_text()
doc = (root / 'docs/api.md').read_text()
problems = []

def strip_comments(t):
    return re.sub(r'/\*.*?\*/', ' ', t, flags=re.S)

def norm(t):
    return re.sub(r'\s+', ' ', t).strip()

def norm_code(t):
    t = re.sub(r'/\*.*?\*/', ' ', t, flags=re.S)
    t = t.replace('CF_EXPORT', '')
    t = re.sub(r'CF_PRINTF\([^)]*\)', '', t)
    t = re.sub(r'\s+', ' ', t)
    t = re.sub(r'\s*([(),;*{}=\[\]])\s*', r'\1', t)
    return t.strip()

code_blocks = re.findall(r'```c\n(.*?)```', doc, flags=re.S)
doc_code = norm_code('\n'.join(code_blocks))
doc_code_with_comments = norm('\n'.join(code_blocks))
headings = re.findall(r'^#{2,4} (.*)$', doc, flags=re.M)

# functions
hdr_nc = strip_comments(hdr)
decls = re.sub(r'^#.*(?:\\\n.*)*$', '', hdr_nc, flags=re.M)  # no preprocessor lines
funcs = re.findall(r'CF_EXPORT\s+([^;{]*?\b(cf_[a-z_0-9]+)\s*\([^;]*\))[^;]*;', decls, flags=re.S)
for proto, name in funcs:
    # cf_version is documented under "Version"
    if not any(re.search(r'\b(%s|%s)\b' % (name, name[3:].capitalize()), h) for h in headings):
        problems.append('function %s: no heading' % name)
    if norm_code(proto) + ';' not in doc_code:
        problems.append('function %s: prototype differs from the header: %s' % (name, norm(proto)))

# typedef'd enums and structs, with their comments: the doc reproduces them as they are
for m in re.finditer(r'typedef (enum|struct) (cf_[a-z_]+) \{.*?\} \2;', hdr, flags=re.S):
    if m.group(2) == 'cf_errno':
        continue  # generated from CF_ERRNO_MAP: checked with the error table below
    if norm(m.group(0)) not in doc_code_with_comments:
        problems.append('%s %s: not reproduced as in the header' % (m.group(1), m.group(2)))
    if not any(re.search(r'\b%s\b' % m.group(2), h) for h in headings):
        problems.append('%s %s: no heading' % (m.group(1), m.group(2)))

# every public identifier appears somewhere
names = set(re.findall(r'\b(cf_[a-z_0-9]+|CF_[A-Z_0-9]+)\b', hdr_nc))
names |= {'CF_E' + n for n in re.findall(r'XX\(([A-Z]+),', hdr)}
names = {n for n in names if not n.startswith(('cf__', 'CF__')) and n != 'CFUTURES_H'}
for n in sorted(names):
    if not re.search(r'\b%s\b' % n, doc):
        problems.append('%s: not mentioned' % n)

# struct fields
for m in re.finditer(r'typedef struct (cf_[a-z_]+) \{(.*?)\} \1;', hdr_nc, flags=re.S):
    for field in re.findall(r'(\w+)\s*(?:\)\s*\([^)]*\))?;', m.group(2)):
        if not re.search(r'`%s`' % field, doc) and field not in ('name', 'fn', 'data', 'len'):
            problems.append('%s.%s: field not described' % (m.group(1), field))

# public #define lines: each reproduced (name and value) in a code block
for m in re.finditer(r'^#define (CF_[A-Z_0-9]+)(\(.*?\))? +(.+?)\s*(?:/\*.*)?$', hdr, flags=re.M):
    name, args, value = m.groups()
    if name in ('CF_EXPORT', 'CF_PRINTF', 'CF_ERRNO_MAP') or name.startswith('CF__'):
        continue
    if norm_code('#define %s%s %s' % (name, args or '', value)) not in doc_code:
        problems.append('#define %s: not reproduced with its value' % name)

# the error table
rows = {r[0]: r for r in re.findall(r'^\| `(CF_E[A-Z]+)` \| (-?\d+) \| ([^|]+) \|', doc, flags=re.M)}
for name, value, text in re.findall(r'XX\(([A-Z]+), (-?\d+), "([^"]*)"\)', hdr):
    row = rows.get('CF_E' + name)
    if not row:
        problems.append('CF_E%s: no row in the error table' % name)
    elif row[1] != value or row[2].strip() != text:
        problems.append('CF_E%s: table says %s "%s", header %s "%s"' % (name, row[1], row[2].strip(), value, text))
last = re.findall(r'XX\(([A-Z]+), (-?\d+),', hdr)[-1]
if 'CF_E%s = %s' % last not in doc:
    problems.append('the enum summary does not end with CF_E%s = %s' % last)

for p in problems:
    print(p)
print('%d problem(s)' % len(problems) if problems else 'docs/api.md matches include/cfutures.h')
sys.exit(1 if problems else 0)
