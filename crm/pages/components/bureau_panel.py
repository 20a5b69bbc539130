"""The credit bureau's part of the card's «Кредитная история» tab: the kept report, «Запросить отчёт БКИ»
and the borrower's consent.

Drawn after the card, into the empty place the tab's markup leaves for it (``card_markup.bureau_slot``,
through ``ui.teleport``), and read lazily: a screen pop draws the card exactly as before and the kept
report (never the bureau) is read a moment later. The report is markup (``card_bureau.html``,
autoescaped), rendered off the event loop.
"""

from __future__ import annotations

from datetime import date, datetime, time

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from nicegui import ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.pages.components.card_markup import TEMPLATES, bureau_slot
from crm.pages.off_loop import service
from crm.services.credit_history import CreditHistory, KeptReport

_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(['html']),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_ENV.filters |= {
    'money': fmt.money,
    'day': fmt.day,
    'moment': fmt.moment,
    'month': lambda value: f'{value:%m}.{value.year:04d}',
    'pd': lambda symbol: 'none' if symbol == '-' else symbol,
}


def render(history: CreditHistory, failure: str | None = None) -> str:
    """The bureau's part as markup; ``failure``: why the last request brought no report."""
    report: KeptReport | None = history.report
    sections = []
    if report is not None:
        sections = [('Открытые счета', report.open_accounts), ('Закрытые счета', report.closed_accounts)]
    return _ENV.get_template('card_bureau.html').render(
        report=report, sections=sections, failure=failure, consent=consent_line(history)
    )


def consent_line(history: CreditHistory) -> str:
    if history.consent_given_at is None:
        return 'Согласия на запрос в БКИ нет'
    given = fmt.moment(history.consent_given_at)
    if history.consent_valid:
        return f'Согласие на запрос в БКИ от {given}'
    return f'Согласие на запрос в БКИ от {given} старше 6 месяцев: нужно новое'


def consent_moment(text: str, now: datetime) -> datetime:
    """The moment of a consent given on ``ДД.ММ.ГГГГ`` (midday in the office, now if that is later)."""
    try:
        day = datetime.strptime(text.strip(), '%d.%m.%Y').date()
    except ValueError:
        raise ServiceError('Укажите дату согласия в виде ДД.ММ.ГГГГ') from None
    return min(now, datetime.combine(day, time(12), fmt.OFFICE_TZ))


class BureauPanel:
    """The bureau's part for one drawn card. Nothing of it goes out with the card: a moment after the
    card is on screen the kept report is read off the loop and the part is drawn, in its own update."""

    def __init__(self, services: Services, actor: Actor, borrower_id: int) -> None:
        self.services = services
        self.actor = actor
        self.borrower_id = borrower_id
        self._anchor = ui.timer(0.05, self._draw, once=True)

    async def _draw(self) -> None:
        content = await service(self._read, None)
        if self._anchor.is_deleted:  # the card was replaced meanwhile (another pop, another borrower)
            return
        with ui.teleport(f'#{bureau_slot(self.borrower_id)}'), ui.column().classes('crm-bureau-part'):
            self.view = ui.html(content, sanitize=False)
            with ui.row():
                self.request = ui.button(
                    'Запросить отчёт БКИ', icon='assignment', on_click=self.refresh
                ).props('outline dense no-caps')
                ui.button('Согласие на запрос в БКИ', icon='how_to_reg', on_click=self.consent_dialog).props(
                    'flat dense no-caps'
                )

    def _read(self, failure: str | None) -> str:
        """Off the loop: the kept report, drawn."""
        return render(self.services.credit_history.latest(self.actor, self.borrower_id), failure)

    async def refresh(self) -> None:
        """Ask the bureau; a refusal is shown and stays in the tab above the kept report."""
        self.request.props('loading')
        try:
            history = await service(self.services.credit_history.refresh, self.actor, self.borrower_id)
            content = await service(render, history)
            ui.notify('Отчёт БКИ получен', type='positive')
        except ServiceError as error:
            ui.notify(error.message, type='warning', multi_line=True)
            content = await service(self._read, error.message)
        finally:
            self.request.props(remove='loading')
        self.view.set_content(content)

    def consent_dialog(self) -> None:
        today = self._today()
        with ui.dialog() as dialog, ui.card():
            ui.label('Согласие заёмщика на запрос в БКИ').classes('text-lg font-semibold')
            ui.label('Согласие действует 6 месяцев с даты, когда оно дано.').classes('text-sm')
            given = ui.input('Дата согласия', value=fmt.day(today)).props('outlined dense')

            async def save() -> None:
                try:
                    moment = consent_moment(given.value or '', self.services.clock())
                    history = await service(
                        self.services.credit_history.record_consent, self.actor, self.borrower_id, moment
                    )
                except ServiceError as error:
                    ui.notify(error.message, type='warning', multi_line=True)
                    return
                dialog.close()
                ui.notify('Согласие записано', type='positive')
                self.view.set_content(await service(render, history))

            with ui.row():
                ui.button('Отмена', on_click=dialog.close).props('flat')
                ui.button('Записать', on_click=save)
        dialog.open()

    def _today(self) -> date:
        return self.services.clock().astimezone(fmt.OFFICE_TZ).date()
