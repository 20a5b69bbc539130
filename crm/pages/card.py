"""/borrower/{id}: the card, rendered by the workspace (the same code a screen pop uses)."""

from __future__ import annotations

from crm.bootstrap import Services
from crm.pages.errors import not_found, valid_id
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.route import page
from crm.pages.session import page_actor


def register(services: Services, hub: LiveHub) -> None:
    @page('/borrower/{borrower_id}')
    async def card_page(borrower_id: int) -> None:
        actor = page_actor()
        if actor is None:
            return
        with frame(services, hub, actor, 'Заёмщик') as workspace:
            if not valid_id(borrower_id):
                not_found()
        if not valid_id(borrower_id):
            return
        await workspace.show_card(borrower_id)
        await workspace.start()
