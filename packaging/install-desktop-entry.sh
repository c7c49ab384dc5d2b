#!/bin/sh
# Adds LlamaDesk to your desktop's application menu, running it from this folder.
# Only your own account is changed: ~/.local/share/applications and ~/.local/share/icons.
# Run it again after moving the folder; remove-desktop-entry.sh takes the entry away.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
for dir in "$here"/icons/hicolor/*/apps; do
    size=$(basename "$(dirname "$dir")")
    mkdir -p "$data/icons/hicolor/$size/apps"
    cp "$dir"/llamadesk.* "$data/icons/hicolor/$size/apps/"
done
mkdir -p "$data/applications"
sed -e "s|^Exec=.*|Exec=\"$here/llamadesk\"|" -e "s|^TryExec=.*|TryExec=$here/llamadesk|" \
    "$here/llamadesk.desktop" > "$data/applications/llamadesk.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "LlamaDesk is in your application menu ($data/applications/llamadesk.desktop)."
