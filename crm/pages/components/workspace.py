"""One operator tab: the call panel and the content area a screen pop fills in place (no page load)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from nicegui import ui
from nicegui.events import GenericEventArguments

from crm.bootstrap import Services
from crm.domain.actor import Actor
from crm.domain.contact_rules import LegalFlag, Verdict
from crm.domain.errors import BadQuery, NotFound, ServiceError
from crm.domain.notifications import (
    CallStateChanged,
    ChatChanged,
    HistoryChanged,
    Notification,
    OperatorStateChanged,
    RequestsChanged,
    ScreenPop,
)
from crm.domain.telephony import CallState
from crm.pages.components import (
    bureau_panel,
    call_panel,
    card_markup,
    card_view,
    chat_panel,
    contact_record,
    operator_state,
    privacy_actions,
    product_panel,
    promise_panel,
    request_badge,
)
from crm.pages.components.card_markup import CardMarkup
from crm.pages.components.coalesce import Coalesced
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.session import session_token
from crm.services.call_views import CallView, ResultOption
from crm.services.sessions import HEARTBEAT_S
from crm.services.views import BorrowerCard, Phone, SearchResult

log = logging.getLogger(__name__)
# a call ringing longer than this when a page is drawn is one whose end never came (a PBX rings for well
# under a minute): its card is not put over the page
MISSED_RING = timedelta(seconds=90)


@dataclass(frozen=True)
class DrawnCard:
    """A card read for this tab and drawn as markup, both off the event loop."""

    card: BorrowerCard
    verdict: Verdict
    markup: CardMarkup


ShownPop = tuple[CallView, DrawnCard | None]  # the call, and its card if the caller is known


class Workspace:
    """What the call panel and the card are drawn for: the actor, their call, the card on screen."""

    def __init__(self, services: Services, hub: LiveHub, actor: Actor) -> None:
        self.services = services
        self.hub = hub
        self.actor = actor
        self.call: CallView | None = None
        self.card: BorrowerCard | None = None
        self.verdict: Verdict | None = None
        self.panel = call_panel.CallPanel(self)
        self.content = ui.column().classes('w-full gap-4')
        self._history: card_view.HistoryPanel | None = None
        # one read of the history at a time: two overlapping reads (an SMS queued, then sent a moment later)
        # could finish out of order and leave the older one on screen
        self.refresh_history = Coalesced(self._refresh_history)
        self._promises: promise_panel.PromisePanel | None = None
        self._products: product_panel.ProductPanel | None = None
        self.chats = chat_panel.ChatLive(self)  # the header's badge (given by the frame) and the card's chat
        self.requests = request_badge.RequestLive(self)  # the header's count of new requests, the list page
        self.operator_state = operator_state.StateLive(self)  # the header's state chip (operators), presence
        self.result_options: list[ResultOption] = []
        self._call_updates = 0  # counts changes of self.call, so a slow load cannot undo a newer state

    async def start(self) -> None:
        """Show the operator's current call and start hearing screen pops for their extension."""
        self.result_options = await service(self.services.calls.result_options)
        self.call = await service(self.services.calls.current, self.actor)
        self.render_call()
        client = ui.context.client
        self.hub.register(
            client,
            self.actor.extension,
            self.on_notification,
            self.prepare,
            user_id=self.actor.id,
            wants=self.wants,
        )
        ui.on('crm-dial', self._dial_from_card)  # a phone chip on the card (card_markup.CARD_JS)
        ui.on('crm-reveal', self._reveal)  # «Показать» on a masked field of the card
        await self.chats.start()
        await self.requests.start()
        await self.operator_state.start()
        token = session_token()
        ui.timer(HEARTBEAT_S, lambda: self._heartbeat(token))
        await self._pop_missed()

    async def _pop_missed(self) -> None:
        """A call still ringing when the page is drawn pops its card, as the ring would have: its screen pop
        went to no tab of this page (it was loading, or reloading after its process died)."""
        call = self.call
        if call is None or call.state != CallState.RINGING or call.borrower_id is None:
            return
        if self.services.clock() - call.started_at > MISSED_RING:  # its end was lost: no card over the page
            return
        if self.card is None or self.card.id != call.borrower_id:
            await self.show_card(call.borrower_id)

    async def _heartbeat(self, token: str | None) -> None:
        """An open tab keeps its session in use; an ended one (logout elsewhere, idle) leads to the login."""
        if await service(self.services.sessions.resolve, token) is None:
            ui.navigate.to('/login')

    # --- notifications from the bus -------------------------------------------------------------
    def wants(self, notification: Notification) -> bool:
        """Whether this tab has anything to do with it: a borrower's history only where the card is open."""
        if isinstance(notification, HistoryChanged):
            return self.card is not None and self.card.id == notification.borrower_id
        return True

    def prepare(self, notification: Notification) -> ShownPop | None:
        """On the live hub's reader threads, while the loop sends the caller's name: a screen pop's call,
        and its card read and drawn as markup — unless it was read with the call (``pop`` draws that)."""
        if not isinstance(notification, ScreenPop):
            return None
        if self.services.screen_pops.take(notification.call_id, self.actor.id) is not None:
            return None
        return self._load_pop(notification.call_id)

    async def on_notification(
        self, notification: Notification, prepared: Future[ShownPop | None] | None = None
    ) -> None:
        """On the event loop."""
        match notification:
            case ScreenPop():
                await self.pop(notification, prepared)
            case CallStateChanged(call_id=call_id):
                if self.call is None or self.call.call_id == call_id or not self.call.live:
                    await self.refresh_call(call_id)
            case HistoryChanged(borrower_id=borrower_id):
                if self.card is not None and borrower_id == self.card.id:
                    await self.refresh_history()
            case ChatChanged():
                await self.chats.on_change(notification)
            case RequestsChanged():
                await self.requests.on_change(notification)
            case OperatorStateChanged():
                await self.operator_state.on_change(notification)

    async def pop(self, pop: ScreenPop, prepared: Future[ShownPop | None] | None = None) -> None:
        """A ring. Read with the commit that recorded the call (this process did, for this tab): the call
        and the whole card go out in one update. Otherwise the panel names the caller at once from the
        notification alone, and the card follows, read and drawn by a reader thread meanwhile
        (``prepare``), or else here in a worker thread."""
        ready = self._read_with_call(pop)
        if ready is not None:
            self._show_pop(ready, self._call_updates)
            return
        self.call = CallView.ringing(pop)
        self._call_updates += 1
        updates = self._call_updates
        self.render_call()  # goes out while the card is read
        loaded = await asyncio.wrap_future(prepared) if prepared is not None else None
        if loaded is None:
            try:
                loaded = await service(self._load_pop, pop.call_id)
            except ServiceError as error:
                log.warning('screen pop for call %s not shown: %s', pop.call_id, error.message)
                return
        self._show_pop(loaded, updates)

    def _show_pop(self, shown: ShownPop, updates: int) -> None:
        call, drawn = shown
        if self._call_updates == updates:  # no answered / ended arrived while the card was loading
            self.call = call
            self._call_updates += 1
        if drawn is not None:
            self._render_card(drawn)
            self.render_call()
        else:
            self.show_unknown(call.number)

    def _read_with_call(self, pop: ScreenPop) -> ShownPop | None:
        """The pop as read in the transaction that recorded the call, drawn (markup: ~1 ms); or None."""
        popped = self.services.screen_pops.take(pop.call_id, self.actor.id)
        if popped is None:
            return None
        if popped.card is None or popped.verdict is None:
            return popped.call, None
        return popped.call, self._drawn(popped.card, popped.verdict)

    def _load_pop(self, call_id: str) -> ShownPop:
        """Off the loop: the call (with other holders of the number) and, if the caller is known, the card."""
        call = self.services.calls.view(self.actor, call_id)
        if call.borrower_id is None:
            return call, None
        return call, self._load_card(call.borrower_id)

    async def refresh_call(self, call_id: str) -> None:
        try:
            view = await service(self.services.calls.view, self.actor, call_id)
        except ServiceError:
            return
        self.show_call(view)

    def show_call(self, view: CallView) -> None:
        """The panel keeps a call while it is live or waits for its result, then lets it go."""
        if view.live or view.needs_result:
            self.call = view
        elif self.call is not None and self.call.call_id == view.call_id:
            self.call = None
        self._call_updates += 1
        self.render_call()

    # --- content ---------------------------------------------------------------------------------
    async def show_card(self, borrower_id: int) -> None:
        """Render the borrower's card into this tab; the address follows so a reload keeps it."""
        try:
            drawn = await service(self._load_card, borrower_id)
        except NotFound as error:
            self.content.clear()
            with self.content:
                ui.label(error.message).classes('text-lg')
                ui.link('К списку заёмщиков', '/')
            return
        self._render_card(drawn)
        self.render_call()

    def _load_card(self, borrower_id: int) -> DrawnCard:
        """Off the loop: the card (an audited view), whether it may be called now, and its markup."""
        return self._drawn(*self.services.borrowers.card_with_verdict(self.actor, borrower_id))

    def _drawn(self, card: BorrowerCard, verdict: Verdict) -> DrawnCard:
        return DrawnCard(card, verdict, card_markup.render(card, self.services.clock()))

    def _render_card(self, drawn: DrawnCard) -> None:
        card = drawn.card
        self.card, self.verdict = card, drawn.verdict
        ui.page_title(f'{card.full_name} — Lender CRM')
        self.content.clear()
        with self.content:
            save_flags = self.save_flags if self.actor.sees_everyone else None
            add_record = partial(
                contact_record.add_button, self.services, self.actor, card.id, lambda: self.result_options
            )
            admin = partial(privacy_actions.buttons, self.services, self.actor, card, self._card_again)
            self._history = card_view.show(card, drawn.markup, save_flags, lambda: (add_record(), admin()))
            self._promises = promise_panel.PromisePanel(self.services, self.actor, card.id)  # read later
            self.chats.show_for(card.id)
            bureau_panel.BureauPanel(self.services, self.actor, card.id)  # reads the kept report later
            self._products = product_panel.ProductPanel(self.services, self.actor, card.id)  # offers, later
        ui.navigate.history.replace(f'/borrower/{card.id}')

    async def _card_again(self) -> None:
        """The card drawn again after an administrator hid a record or erased the data."""
        if self.card is not None:
            await self.show_card(self.card.id)

    async def save_flags(self, flags: list[LegalFlag]) -> None:
        if self.card is None:
            return
        with self.content:  # the dialog that called this goes away with the card it is redrawn from
            card_id = self.card.id
            if await attempt(self.services.borrowers.set_legal_flags, self.actor, card_id, flags) is None:
                return
            ui.notify('Правовой статус сохранён', type='positive')
            await self.show_card(card_id)

    def show_unknown(self, number: str) -> None:
        self.card = None
        self.content.clear()
        with self.content:
            card_view.unknown_caller(number, self.search, self.link_and_show)
        self.render_call()

    async def search(self, text: str) -> SearchResult | str:
        try:
            return await service(self.services.borrowers.search, self.actor, text)
        except BadQuery as error:
            return error.message

    async def _refresh_history(self) -> None:
        if self.card is None or self._history is None:
            return
        card_id = self.card.id
        card, drawn, verdict = await service(self._load_history, card_id)
        if self.card is None or self.card.id != card_id:  # another card was drawn meanwhile
            return
        self._history.update(drawn.history, drawn.top)  # the head: debts, the broken-promise flag
        self.card, self.verdict = card, verdict
        self.render_call()
        if self._promises is not None and not self._promises.gone:
            await self._promises.refresh()
        if self._products is not None and not self._products.gone:  # a sale's answer, a debt changed
            await self._products.refresh()

    def _load_history(self, borrower_id: int) -> tuple[BorrowerCard, CardMarkup, Verdict]:
        """Off the loop: the card read again (not a new view) and drawn, and the verdict it may have
        changed; the tab redraws its head and history (the tabs keep the operator's place)."""
        card = self.services.borrowers.card_again(self.actor, borrower_id)
        drawn = card_markup.render(card, self.services.clock())
        return card, drawn, self.services.compliance.outgoing_call(borrower_id)

    # --- call controls ---------------------------------------------------------------------------
    def render_call(self) -> None:
        self.panel.update()

    async def act(self, action: Callable[..., CallView], *args: object, **kwargs: object) -> CallView | None:
        """Run a call service action off the loop; show a refusal as a notification."""
        view = await attempt(action, self.actor, *args, **kwargs)
        if view is not None:
            self.show_call(view)
        return view

    async def _dial_from_card(self, event: GenericEventArguments) -> None:
        """A click on one of the card's phones (by its row id): call it for this borrower (the law decides,
        as ever)."""
        wanted = str(event.args)
        phone = next((p for p in self.card.phones if str(p.id) == wanted), None) if self.card else None
        if phone is not None:  # only the shown borrower's own phones
            await self.dial_phone(phone)

    async def dial_phone(self, phone: Phone) -> None:
        """Dial one of the card's phones. A masked one is dialled by its row: the number is looked up on
        the server and goes to the call service, never to the browser."""
        card = self.card
        if card is None:
            return
        number = phone.number
        if 'phones' in card.masked:
            found = await attempt(self.services.field_visibility.dial_number, self.actor, card.id, phone.id)
            if found is None:
                return
            number = found
        await self.act(self.services.calls.dial, number, borrower_id=card.id)

    async def _reveal(self, event: GenericEventArguments) -> None:
        """«Показать»: the clear value of a masked field (audited as field.reveal), in place of the mask."""
        args = event.args if isinstance(event.args, dict) else {}
        card, field = self.card, str(args.get('field') or '')
        if card is None or field not in card.masked:
            return
        phone = args.get('phone')
        phone_id = int(phone) if isinstance(phone, str | int) and str(phone).isdigit() else None
        value = await attempt(
            self.services.field_visibility.reveal, self.actor, card.id, field, phone_id=phone_id
        )
        if value is None:
            return
        slot = card_markup.reveal_slot(card.id, field, phone_id)
        ui.run_javascript(
            f'(() => {{ const el = document.getElementById({json.dumps(slot)}); if (!el) return;'
            f' el.textContent = {json.dumps(value)};'
            ' const b = el.parentElement.querySelector("[data-reveal]"); if (b) b.remove(); })()'
        )

    async def link_and_show(self, borrower_id: int) -> None:
        if self.call is not None:
            await self.act(self.services.calls.link_borrower, self.call.call_id, borrower_id)
        await self.show_card(borrower_id)
