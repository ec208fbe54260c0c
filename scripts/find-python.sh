#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or fail with a clear message.
# Order: $PYTHON, python3.13/python3.12/python3 on PATH, then pyenv's installed versions.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for cand in "${PYTHON:-}" python3.12 python3.13 python3; do
  [ -n "$cand" ] || continue
  p=$(command -v "$cand" 2>/dev/null) || continue
  if ok "$p"; then echo "$p"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
  for v in 3.12 3.13; do
    pre=$(pyenv prefix "$v" 2>/dev/null) || continue
    if [ -x "$pre/bin/python" ] && ok "$pre/bin/python"; then echo "$pre/bin/python"; exit 0; fi
  done
fi
echo "error: electrofem needs Python >= 3.12 and none was found (tried \$PYTHON, python3.12, python3.13, python3, pyenv 3.12/3.13). Install one or set PYTHON=/path/to/python3.12." >&2
exit 1
