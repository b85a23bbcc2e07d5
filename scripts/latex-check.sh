#!/bin/sh
# latex-check.sh [DIR] — compile every *.tex table of DIR (default: paper-tables) with pdflatex.
#
# Each table is copied alone into a fresh temporary folder and wrapped in a minimal document:
#
#   \documentclass{article}
#   \usepackage{booktabs}   % \toprule, \midrule, \bottomrule: the only package the `table`
#                           % kind's tables rely on (LaTeX escapes such as \textless{} and
#                           % \textasciitilde{} are in the LaTeX kernel)
#   \begin{document}
#   \input{table}
#   \mbox{}                 % so that a file of macro definitions (values.tex) makes a page too
#   \end{document}
#
# and compiled with `pdflatex -interaction=nonstopmode -halt-on-error -no-shell-escape`.
# Prints one line per table, `ok  DIR/x.tex` or `FAILED  DIR/x.tex`, followed for failures by
# the log's error lines (`! ...` and the `l.N` line giving the line of the table file).
# Overfull boxes and other warnings do not fail a table.
#
# Exit status: 0 when every table compiles, 1 when at least one fails, 2 when DIR does not
# exist, holds no *.tex file, or pdflatex is missing.
set -u

dir=${1:-paper-tables}
dir=${dir%/}

if ! command -v pdflatex >/dev/null 2>&1; then
    echo "latex-check: pdflatex not found (Debian: apt-get install texlive-latex-base texlive-latex-recommended)" >&2
    exit 2
fi
if [ ! -d "$dir" ]; then
    echo "latex-check: $dir is not a folder" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/latex-check.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

total=0
failed=0
for tex in "$dir"/*.tex; do
    [ -f "$tex" ] || continue
    total=$((total + 1))
    work="$tmp/$total"
    mkdir "$work"
    cp "$tex" "$work/table.tex"
    cat >"$work/doc.tex" <<'EOF'
\documentclass{article}
\usepackage{booktabs}
\begin{document}
\input{table}
\mbox{}
\end{document}
EOF
    if (cd "$work" && pdflatex -interaction=nonstopmode -halt-on-error -no-shell-escape doc.tex \
        </dev/null >/dev/null 2>&1) && [ -s "$work/doc.pdf" ]; then
        echo "ok      $tex"
    else
        failed=$((failed + 1))
        echo "FAILED  $tex"
        if [ -f "$work/doc.log" ]; then
            # The `! message` line, and the `l.N context` line that locates it in the table file.
            awk -v f="$tex" '
                /^!  ==> Fatal error/ { next }
                /^! / { print "    " $0; shown++; next }
                /^l\.[0-9]+ / { sub(/^l\./, ""); n = $0; sub(/ .*/, "", n); rest = $0; sub(/^[0-9]+ /, "", rest);
                                print "    " f ":" n ": " rest; shown++ }
                END { if (!shown) print "    (no error line in the log; see pdflatex output)" }
            ' "$work/doc.log"
        else
            echo "    (pdflatex wrote no log)"
        fi
    fi
done

if [ "$total" -eq 0 ]; then
    echo "latex-check: no *.tex file in $dir" >&2
    exit 2
fi
echo "latex-check: $((total - failed)) of $total table(s) compile"
[ "$failed" -eq 0 ]
