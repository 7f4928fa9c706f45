#!/bin/sh
# Print the path of a Python of version $1 (e.g. 3.13): PATH first, then pyenv, then the usual prefixes.
want=$1
for candidate in "python$want" "$(pyenv root 2>/dev/null)"/versions/"$want"*/bin/python"$want" \
                 /usr/bin/python"$want" /usr/local/bin/python"$want"; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  # pyenv shims exist for versions that are not selected: ask the interpreter itself.
  if "$path" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$want')" 2>/dev/null; then
    echo "$path"
    exit 0
  fi
done
echo "No Python $want found: install it (apt-get install python$want, or pyenv install $want)." >&2
exit 1
