#!/bin/sh
# Takes LlamaDesk out of your application menu. Your chats, models and settings stay.
set -eu
data=${XDG_DATA_HOME:-$HOME/.local/share}
rm -f "$data/applications/llamadesk.desktop" "$data"/icons/hicolor/*/apps/llamadesk.png \
      "$data/icons/hicolor/scalable/apps/llamadesk.svg"
echo "LlamaDesk's menu entry is removed."
