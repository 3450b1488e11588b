"""Self cost per function of a callgrind dump, summed (callgrind_annotate
folds everything under the thread's entry point for these dumps).

    python3 self_cost.py DUMP [TOP=15]
"""
import collections, re, sys
names, cost, current, skip = {}, collections.Counter(), "?", False
for line in open(sys.argv[1], errors="replace"):
    if line.startswith(("fn=", "cfn=")):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
        if m and m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        if line.startswith("fn=") and m:
            current = names.get(m.group(1), "?")
    elif line.startswith("calls="):
        skip = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        if skip:
            skip = False
        elif len(line.split()) > 1:
            cost[current] += int(line.split()[1])
total = sum(cost.values())
top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
for name, ir in cost.most_common(top):
    print(f"{ir:>12,} {100 * ir / total:5.1f}%  {name[:110]}")
