"""Split pacemaker's CTS expectations of crm_mon (cts/cli/regression.crm_mon.exp) into
one file per output, reproducibly:

    python3 split_crm_mon_exp.py /path/to/pacemaker/git-dir Pacemaker-2.0.5 Pacemaker-2.1.0 \
        <commit>

reads the .exp at each revision with `git show`, and writes
crm_mon/<label>/<NN>-<test-name>.{xml,txt} beside this script (the label is the tag, or
"main-<12 hex>" for a commit), each the lines between the test's "Begin test" and "End
test" markers.  The harness merges crm_mon's stderr into the .exp: pacemaker's own log
lines (`unpack_rsc_op <TAB>error: ...`) are dropped, since the operator check reads
stdout only; everything else is kept byte for byte.  Outputs of commands other than
crm_mon (none today) would be skipped.
"""

import os
import re
import subprocess
import sys

EXP = "cts/cli/regression.crm_mon.exp"
HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = re.compile(r"^=#=#=#= Begin test: (.*) =#=#=#=$")
END = re.compile(r"^=#=#=#= End test: ")
LOG_LINE = re.compile(r"^\w+ \t(error|warning|notice|info|debug|trace|crit): ")


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80]


def outputs(text):
    """(test name, output lines) for each test of the .exp."""
    name, lines = None, []
    for line in text.splitlines():
        m = BEGIN.match(line)
        if m:
            name, lines = m.group(1), []
        elif END.match(line) and name is not None:
            yield name, lines
            name = None
        elif name is not None and not LOG_LINE.match(line):
            lines.append(line)


def split(git_dir, rev):
    text = subprocess.run(["git", "-C", git_dir, "show", "%s:%s" % (rev, EXP)], check=True,
                          capture_output=True, text=True).stdout
    label = rev if not re.fullmatch(r"[0-9a-f]{40}", rev) else "main-%s" % rev[:12]
    out_dir = os.path.join(HERE, "crm_mon", label)
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for i, (name, lines) in enumerate(outputs(text), 1):
        body = "\n".join(lines) + "\n"
        ext = "xml" if body.lstrip().startswith("<") else "txt"
        with open(os.path.join(out_dir, "%02d-%s.%s" % (i, slug(name), ext)), "w") as f:
            f.write(body)
        n += 1
    return label, n


if __name__ == "__main__":
    for rev in sys.argv[2:]:
        print("%s: %d outputs" % split(sys.argv[1], rev))
