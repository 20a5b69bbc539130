"""Deleted NiceGUI elements freed at once, not by the cycle collector.

Every element's ``classes``, ``style`` and ``props`` observe themselves (each keeps its own bound
``_update`` as a change handler), so each element leaves three reference cycles behind when deleted. A
screen pop redraws about eighty elements of the card: a thousand cyclic objects per call, which only a
full collection frees — at ten calls a second that was most of what ``crm.gc_pacing``'s passes had to
wade through, and what grew the processes between them. Dropping the handlers when an element is
deleted (it is never drawn again) lets reference counting free them the moment the element goes; so
does dropping a deleted field's value-change handlers, closures that usually refer to the field.
"""

from __future__ import annotations

from nicegui.element import Element
from nicegui.elements.mixins.value_element import ValueElement

_original_handle_delete = Element._handle_delete


def _handle_delete_and_release(self: Element) -> None:
    _original_handle_delete(self)
    for observed in (self._classes, self._style, self._props):
        observed._change_handlers.clear()
    if isinstance(self, ValueElement):  # a field's on-change closure usually refers to the field itself
        self._change_handlers.clear()


def release_deleted_elements() -> None:
    """Install once, before pages are drawn (idempotent)."""
    Element._handle_delete = _handle_delete_and_release  # type: ignore[method-assign]
