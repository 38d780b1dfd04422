#!/bin/sh
# Adds cnnbuilder to the desktop's application menu for this user: the icon at the hicolor sizes and a
# .desktop entry pointing at this folder's executable. Run it again after moving the folder;
# `install-desktop-entry.sh --remove` takes both away.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$data/applications/cnnbuilder.desktop"
    find "$data/icons/hicolor" -name 'cnnbuilder.png' -o -name 'cnnbuilder.svg' 2>/dev/null | xargs -r rm -f
    echo "removed cnnbuilder from the application menu"
    exit 0
fi
mkdir -p "$data/applications"
cp -r "$here/share/icons" "$data/"
sed "s|^Exec=cnnbuilder|Exec=\"$here/cnnbuilder\"|" "$here/share/applications/cnnbuilder.desktop" \
    > "$data/applications/cnnbuilder.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "added cnnbuilder to the application menu ($data/applications/cnnbuilder.desktop)"
