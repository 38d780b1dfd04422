"""Edit ▸ Cut, Copy, Paste, Duplicate, Delete, Delete and Reconnect, Select All, Rename, Group,
Ungroup, Open Group, Up One Level; the palette's append (double-click a block type) and View ▸
Auto-Layout: the canvas edits that are not gestures, each one undo step through `Document.push`.
New blocks land in the group open on the canvas (scene.scope).

The window provides `document`, `scene`, `view`, `show_status`, `rename_selected` and `_action`
(which makes a QAction with its shortcuts and themed icon); the window's menus, toolbar and
context menu use the actions made here.
"""

from __future__ import annotations

import json

import shiboken6
from PySide6.QtCore import QMimeData, QObject
from PySide6.QtGui import QCursor, QGuiApplication, QKeySequence

from ..core.blocks import get_spec
from ..core.commands import (
    AddNode,
    ClipError,
    Connect,
    Macro,
    Move,
    MoveGroups,
    clip_of,
    delete_and_reconnect,
    duplicate,
    parse_clip,
    paste,
    shown_positions,
)
from ..core.graph import GraphError
from ..core.layout import scope_layout
from ..core.placement import centre_on, free_shift
from .canvas.items import NODE_H, NODE_W
from .canvas.layout import DX, DY, layered_layout
from .canvas.scene import CLIP_MIME, GraphScene


class EditActions(QObject):
    """A QObject child of the window: the document may outlive it, and Qt drops the connections
    to a dead receiver's slots."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        A, K = window._action, QKeySequence
        self.cut_action = A("Cu&t", self.cut, K.Cut, "cut", "Cut the selected blocks")
        self.copy_action = A("&Copy", self.copy, K.Copy, "copy", "Copy the selected blocks and groups")
        self.paste_action = A("&Paste", self.paste, K.Paste, "paste", "Paste blocks")
        self.duplicate_action = A("&Duplicate", self.duplicate, "Ctrl+D", "duplicate",
                                  "Duplicate the selected blocks and groups")
        self.delete_action = A("De&lete", self.delete, [K.Delete, "Backspace"], "delete",
                               "Delete the selected blocks and connections")
        self.delete_reconnect_action = A("Delete and Re&connect", self.delete_and_reconnect, "Ctrl+Shift+Delete",
                                         None, "Delete the selected blocks and join what fed them to what they fed")
        self.select_all_action = A("Select &All", self.select_all, K.SelectAll, None, "Select every block")
        self.rename_action = A("&Rename Block", window.rename_selected, "F2", None, "Rename the selected block")
        self.layout_action = A("Auto-&Layout", self.auto_layout, "Ctrl+L", "layout",
                               "Arrange all blocks in layers, top to bottom (undoable)")
        scene = window.scene
        self.group_action = A("&Group", lambda: scene.group_selection(), "Ctrl+G", None,
                              "Show the selected blocks as one collapsible block")
        self.ungroup_action = A("U&ngroup", scene.ungroup_selection, "Ctrl+Shift+G", None,
                                "Put the selected group's blocks back in place of it")
        self.open_group_action = A("&Open Group", self.open_group, None, None,
                                   "Show the inside of the selected group (or double-click it)")
        self.up_action = A("&Up One Level", scene.go_up, "Alt+Up", None,
                           "Close the open group and show the level holding it")
        # Backspace also deletes: it goes up only while nothing is selected (its action is then
        # the only enabled one with that key, so the shortcut is not ambiguous).
        self.up_back_action = A("Up One Level (Backspace)", scene.go_up, "Backspace", None, None)

        d = window.document
        d.selection_changed.connect(self.update)
        d.undo_stack.indexChanged.connect(self.update)
        window.scene.selectionChanged.connect(self.update)  # edges are selectable too
        window.scene.scope_changed.connect(self.update)
        QGuiApplication.clipboard().dataChanged.connect(self.update_paste)
        self.update()
        self.update_paste()

    @property
    def document(self):
        return self.window.document

    def _status(self, message: str) -> None:
        self.window.show_status(message)

    # -- enabled state ----------------------------------------------------------------
    def update(self, *args) -> None:
        sel = self.document.selection
        has_nodes = bool(sel)
        self.delete_reconnect_action.setEnabled(has_nodes)
        scene = self.window.scene
        if not shiboken6.isValid(scene):
            return  # the scene deselects its items while it is being destroyed
        groups = scene.selected_group_ids()
        for a in (self.copy_action, self.cut_action, self.duplicate_action):
            a.setEnabled(has_nodes or bool(groups))
        can_delete = has_nodes or bool(groups) or bool(scene.selected_edges())
        self.delete_action.setEnabled(can_delete)
        self.rename_action.setEnabled(len(sel) + len(groups) == 1)
        self.group_action.setEnabled(has_nodes or bool(groups))
        self.ungroup_action.setEnabled(bool(groups))
        self.open_group_action.setEnabled(len(groups) == 1)
        self.up_action.setEnabled(scene.scope is not None)
        self.up_back_action.setEnabled(scene.scope is not None and not can_delete)

    def open_group(self) -> bool:
        groups = self.window.scene.selected_group_ids()
        return len(groups) == 1 and self.window.scene.set_scope(groups[0])

    def update_paste(self) -> None:
        # Only the clipboard decides, so this parses it when it changes, not on every click.
        self.paste_action.setEnabled(self.clipboard_clip() is not None)

    # -- clipboard --------------------------------------------------------------------
    def clipboard_clip(self) -> dict | None:
        return GraphScene.clip_from_mime(QGuiApplication.clipboard().mimeData())

    def copy(self) -> bool:
        """The selected blocks and collapsed groups (with all that is in them), as JSON."""
        ids, groups = self.document.selection, self.window.scene.selected_group_ids()
        clip = clip_of(self.document.graph, ids, groups)
        if not clip["nodes"]:
            self._status("Select blocks to copy" if not groups else "The selected groups hold no blocks to copy")
            return False
        text = json.dumps(clip, ensure_ascii=False)
        md = QMimeData()
        md.setData(CLIP_MIME, text.encode("utf-8"))
        md.setText(text)
        QGuiApplication.clipboard().setMimeData(md)
        what = [_count(len(ids), "block")] if ids else []
        self._status("Copied " + " and ".join(what + ([_count(len(groups), "group")] if groups else [])))
        return True

    def cut(self) -> bool:
        return self.copy() and self.delete()

    def paste(self) -> list[str]:
        clip = self.clipboard_clip()
        if clip is None:
            self._status("The clipboard holds no cnnbuilder blocks")
            return []
        try:
            offset = self._paste_offset(clip)
            cmd = paste(self.document.graph, clip, offset, group=self.window.scene.scope)
        except ClipError as exc:
            self._status(f"Cannot paste: {exc}")
            return []
        problem = self.document.push(cmd)
        if problem:
            self._status(f"Cannot paste: {problem}")
            return []
        self._select_made(cmd)
        return list(cmd.new_ids)

    def _select_made(self, cmd) -> None:
        """Select what a paste or duplicate made that the canvas shows: its blocks in the open scope
        and its outermost groups (selecting a block inside a group would open that group)."""
        self.document.set_selection(cmd.shown_ids)
        self.window.scene.select_groups(cmd.new_group_ids, keep=True)

    def _paste_offset(self, clip) -> tuple[float, float]:
        """Centred where the user looks, then moved right past any block in the way, so repeated
        pastes sit side by side and never on top of existing blocks."""
        group = shown_positions(parse_clip(clip))
        size = (NODE_W, NODE_H)
        dx, dy = centre_on(group, size, self._paste_anchor())
        moved = [(x + dx, y + dy) for x, y in group]
        sx, sy = free_shift(self.window.scene.visible_positions(), moved, size, (DX, 0.0))
        return (round(dx + sx, 1), round(dy + sy, 1))

    def _paste_anchor(self) -> tuple[float, float]:
        """Where a paste goes: under the mouse when it is over the canvas, else the view's centre."""
        view = self.window.view
        vp = view.viewport()
        at = vp.mapFromGlobal(QCursor.pos())
        c = view.mapToScene(at if vp.rect().contains(at) else vp.rect().center())
        return (c.x(), c.y())

    # -- blocks -----------------------------------------------------------------------
    def duplicate(self) -> list[str]:
        ids, groups = self.document.selection, self.window.scene.selected_group_ids()
        if not ids and not groups:
            return []
        g = self.document.graph
        spots = [g.node(n).pos for n in ids] + [g.group(x).pos for x in groups]
        moved = [(x + 40.0, y + 40.0) for x, y in spots]
        sx, sy = free_shift(self.window.scene.visible_positions(), moved, (NODE_W, NODE_H), (DX, 0.0))
        try:
            cmd = duplicate(g, ids, (40.0 + sx, 40.0 + sy), groups)
        except ClipError as exc:  # e.g. only empty groups selected
            self._status(f"Cannot duplicate: {exc}")
            return []
        cmd.text = "Duplicate"
        problem = self.document.push(cmd)
        if problem:
            self._status(f"Cannot duplicate: {problem}")
            return []
        self._select_made(cmd)
        return list(cmd.new_ids)

    def delete(self) -> bool:
        return self.window.scene.delete_selection()

    def delete_and_reconnect(self) -> bool:
        ids = self.document.selection
        try:
            cmd = delete_and_reconnect(self.document.graph, ids)
        except GraphError as exc:
            self._status(f"Cannot delete and reconnect: {exc}")
            return False
        problem = self.document.push(cmd)
        if problem:
            self._status(f"Cannot delete and reconnect: {problem}")
            return False
        self._status(f"Deleted {len(ids)} block{'s' if len(ids) != 1 else ''} and reconnected the chain")
        return True

    def select_all(self) -> None:
        """Every block and group in view (the open group's, not the blocks outside it)."""
        scene = self.window.scene
        self.document.set_selection(list(scene.nodes))
        scene.select_groups(list(scene.groups), keep=True)

    def _free_spot(self, x: float, y: float) -> tuple[float, float]:
        """(x, y) moved right until no block is in the way."""
        sx, sy = free_shift(self.window.scene.visible_positions(), [(x, y)], (NODE_W, NODE_H), (DX, 0.0))
        return (x + sx, y + sy)

    def append_block(self, type_name: str) -> str | None:
        """Palette double-click: add the block below the selected one and connect them."""
        g = self.document.graph
        spec = get_spec(type_name)
        sel = self.document.selection
        if sel and spec.max_inputs != 0:
            src = g.node(sel[-1])
            pos = self._free_spot(src.pos[0], src.pos[1] + DY)
            new_id = g.new_id()
            cmd = Macro(f"Append {type_name}", [AddNode(type_name, pos=pos, node_id=new_id, group=src.group),
                                                Connect(src.id, new_id, port=g.free_port(src.id) or 0)])
        else:
            view = self.window.view
            c = view.mapToScene(view.viewport().rect().center())
            pos = self._free_spot(round(c.x() - NODE_W / 2, 1), round(c.y() - NODE_H / 2, 1))
            cmd = AddNode(type_name, pos=pos, group=self.window.scene.scope)
            new_id = None
        problem = self.document.push(cmd)
        if problem:
            self._status(f"Cannot add {type_name}: {problem}")
            return None
        new_id = new_id or cmd.node_id
        self.document.set_selection([new_id])
        return new_id

    def auto_layout(self) -> bool:
        """Lay out what the canvas shows: the whole graph, or with groups the open scope's blocks
        and collapsed groups."""
        g = self.document.graph
        scene = self.window.scene
        if scene.scope is None and not g.groups:
            target, group_target = layered_layout(g), {}
        else:
            target, group_target = scope_layout(g, scene.scope)
        moves = {nid: pos for nid, pos in target.items() if g.node(nid).pos != pos}
        group_moves = {gid: pos for gid, pos in group_target.items() if g.group(gid).pos != pos}
        if not moves and not group_moves:
            self._status("The layout is already tidy")
            return False
        cmd = Macro("Auto-layout", [Move(moves), MoveGroups(group_moves)]) if group_moves else Move(moves)
        cmd.text = "Auto-layout"
        self.document.push(cmd)
        self.window.view.fit()
        return True


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
