"""The borrower card: who they are, what they owe, what was said before (rendered into any tab)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape

from nicegui import ui

from crm.domain import CHANNEL_LABELS, overdue_bucket, status_label
from crm.domain import formatting as fmt
from crm.domain.contact_rules import LEGAL_FLAG_LABELS, LegalFlag, Verdict
from crm.domain.formatting import day
from crm.domain.identifiers import digits, format_passport, format_phone, format_snils
from crm.domain.links import web_url
from crm.services import views as v

PHONE_KINDS = {'mobile': 'моб.', 'home': 'дом.', 'work': 'раб.'}
CHANNEL_ICONS = {
    'call_in': 'call_received',
    'call_out': 'call_made',
    'sms': 'sms',
    'email': 'mail',
    'chat': 'chat',
    'password': 'key',
    'note': 'edit_note',
}
RESULT_COLORS = {'promise': 'positive', 'paid': 'positive', 'refusal': 'negative', 'wrong_number': 'negative'}


def markup(content: str) -> ui.html:
    """Static markup built here, every datum escaped: one element where labels would take dozens.

    A screen pop draws a whole card while the operator's phone rings; the fewer elements, the sooner
    it is on the screen (and the less the server does for each of a hundred tabs).
    """
    return ui.html(content, sanitize=False)


def fields(pairs: list[tuple[str, str | None]], columns: int) -> None:
    """Labelled values in a grid, each label above its value."""
    cells = ''.join(
        f'<div><div class="text-xs text-gray-500">{escape(label)}</div>'
        f'<div class="text-sm font-medium">{escape(value or "—")}</div></div>'
        for label, value in pairs
    )
    grid = f'display:grid;grid-template-columns:repeat({columns},minmax(0,1fr));gap:0.75rem 1.5rem'
    markup(f'<div style="{grid}">{cells}</div>').classes('w-full')


def heading(card: v.BorrowerCard) -> None:
    loan = card.current_loan
    with ui.row().classes('w-full items-center gap-x-6 gap-y-1'):
        ui.label(f'Займ № {loan.number}' if loan else 'Займов нет').classes('text-lg font-semibold')
        ui.label(f'PIN: {card.pin}').classes('text-lg')
        if loan:
            ui.badge(status_label(loan.status_code, loan.status_name), color='primary').classes('text-sm')
        if card.archived:
            ui.badge('В архиве', color='grey').classes('text-sm')
        ui.space()
        ui.label(f'Ответственный: {card.operator_name or "не назначен"}').classes('text-sm text-gray-600')


def personal(card: v.BorrowerCard, now: datetime) -> None:
    with ui.card().classes('flex-1 min-w-[28rem]'):
        ui.label(card.full_name).classes('text-xl font-semibold').props('data-testid=borrower-name')
        fields(
            [
                ('Дата рождения', fmt.day(card.birth_date)),
                ('ИНН', card.inn),
                ('СНИЛС', format_snils(card.snils) if card.snils else None),
                ('Паспорт', format_passport(card.passport) if card.passport else None),
                ('Кем выдан', card.passport_issued),
                ('E-mail', card.email),
                ('Адрес', card.address),
                ('Город', card.city),
                ('Местное время', fmt.local_time(card.timezone, now)),
                ('Место работы', card.employer),
                ('Долг в месяц', fmt.money(card.monthly_payment)),
                ('Последний контакт', fmt.moment(card.last_contact_at)),
            ],
            columns=3,
        )
        with ui.row().classes('gap-2 flex-wrap'):
            for phone in card.phones:
                chip = ui.chip(
                    f'{format_phone(phone.number)} {PHONE_KINDS.get(phone.kind, "")}', icon='phone'
                )
                chip.props('outline' + (' color=primary' if phone.is_primary else ''))


def loan_terms(card: v.BorrowerCard) -> None:
    loan = card.current_loan
    with ui.card().classes('w-[26rem]'):
        ui.label('Условия займа').classes('text-base font-semibold')
        if loan is None:
            ui.label('Займов нет').classes('text-gray-600')
            return
        fields(
            [
                ('Сумма займа', fmt.money(loan.amount)),
                ('Срок', fmt.days(loan.term_days)),
                ('Ставка', f'{fmt.percent(loan.rate)} в день'),
                ('Продукт', loan.product),
                ('Дата выдачи', fmt.day(loan.issued_on)),
                ('Дата возврата', fmt.day(loan.due_on)),
                ('Остаток основного долга', fmt.money(loan.principal_outstanding)),
                ('Общая задолженность', fmt.money(loan.total_debt)),
            ],
            columns=2,
        )
        overdue = loan.days_past_due > 0
        with ui.row().classes(
            'w-full items-center justify-between rounded p-3 '
            + ('bg-red-50 text-red-900' if overdue else 'bg-green-50 text-green-900')
        ):
            with ui.column().classes('gap-0'):
                ui.label('Просроченная задолженность').classes('text-xs')
                ui.label(fmt.money(loan.overdue_amount)).classes('text-xl font-bold').props(
                    'data-testid=overdue-amount'
                )
            with ui.column().classes('gap-0 items-end'):
                ui.label('Дней просрочки').classes('text-xs')
                ui.label(str(loan.days_past_due)).classes('text-xl font-bold').props(
                    'data-testid=days-past-due'
                )
                ui.label(overdue_bucket(loan.days_past_due)).classes('text-xs')
        if len([x for x in card.loans if x.state == 'active']) > 1:
            ui.label(
                f'Всего по действующим займам: {fmt.money(card.total_debt)}, '
                f'просрочено {fmt.money(card.overdue_amount)}'
            ).classes('text-sm text-gray-700')


def table(headers: list[tuple[str, str]], rows: list[list[str]]) -> None:
    """A plain table as markup, every datum escaped: ``headers`` are (label, 'l' | 'r' alignment).

    No Quasar table here: its component is loaded by the browser on first use, which made the first
    screen pop into a freshly loaded page wait for it.
    """
    align = {'l': 'text-left', 'r': 'text-right whitespace-nowrap'}
    head = ''.join(
        f'<th class="{align[side]} px-2 py-1 font-medium">{escape(label)}</th>' for label, side in headers
    )
    body = ''.join(
        '<tr class="border-t">'
        + ''.join(
            f'<td class="{align[side]} px-2 py-1">{escape(value)}</td>'
            for (_, side), value in zip(headers, row, strict=True)
        )
        + '</tr>'
        for row in rows
    )
    markup(
        f'<table class="w-full text-sm"><thead class="text-xs text-gray-500"><tr>{head}</tr></thead>'
        f'<tbody>{body}</tbody></table>'
    ).classes('w-full overflow-x-auto')


def loans_table(card: v.BorrowerCard) -> None:
    headers = [
        ('Займ №', 'l'),
        ('Продукт', 'l'),
        ('Статус', 'l'),
        ('Сумма', 'r'),
        ('Выдан', 'l'),
        ('Долг', 'r'),
        ('Просрочено', 'r'),
        ('Дней', 'r'),
    ]
    rows = [
        [
            loan.number,
            loan.product,
            status_label(loan.status_code, loan.status_name),
            fmt.money(loan.amount),
            fmt.day(loan.issued_on),
            fmt.money(loan.total_debt),
            fmt.money(loan.overdue_amount),
            str(loan.days_past_due),
        ]
        for loan in card.loans
    ]
    table(headers, rows)


def applications_table(card: v.BorrowerCard) -> None:
    ui.label('Заявки в компании').classes('text-sm font-semibold')
    if not card.applications:
        ui.label('Заявок нет').classes('text-gray-600')
        return
    headers = [
        ('Заявка №', 'l'),
        ('Дата', 'l'),
        ('Продукт', 'l'),
        ('Сумма', 'r'),
        ('Срок', 'l'),
        ('Статус', 'l'),
    ]
    rows = [
        [
            a.number,
            fmt.moment(a.applied_at),
            a.product,
            fmt.money(a.amount),
            fmt.days(a.term_days),
            status_label(a.status_code, a.status_name),
        ]
        for a in card.applications
    ]
    table(headers, rows)


def products_list(card: v.BorrowerCard) -> None:
    if not card.products:
        ui.label('Дополнительные продукты не приобретались').classes('text-gray-600')
        return
    with ui.list().props('dense separator').classes('w-full'):
        for product in card.products:
            with ui.item(), ui.item_section():
                ui.label(product.name).classes('font-medium')
                ui.label(f'{fmt.money(product.price)} · {fmt.moment(product.sold_at)}').classes(
                    'text-xs text-gray-600'
                )


class HistoryPanel:
    """The communication history; updated in place when a contact is recorded in any tab."""

    def __init__(self, card: v.BorrowerCard) -> None:
        with ui.card().classes('w-full'):
            with ui.row().classes('w-full items-center'):
                ui.label('История коммуникаций').classes('text-base font-semibold')
                ui.space()
                self.total = ui.label('').classes('text-sm text-gray-600')
            self.body = ui.column().classes('w-full gap-0')
        self.update(card.communications, card.communications_total)

    def update(self, items: tuple[v.CommunicationItem, ...], total: int) -> None:
        self.total.set_text(str(total))
        self.body.clear()
        with self.body:
            if not items:
                ui.label('Коммуникаций ещё не было').classes('text-gray-600')
                return
            entries = ''.join(timeline_entry(item) for item in items)
            markup(f'<ol class="crm-timeline">{entries}</ol>').classes('w-full')
            if total > len(items):
                ui.label(f'Показаны последние {len(items)}').classes('text-xs text-gray-600')


def timeline_entry(item: v.CommunicationItem) -> str:
    """One contact of the history as a timeline entry (markup, every datum escaped)."""
    title = CHANNEL_LABELS.get(item.channel, item.channel)
    if item.result_name:
        title += f' — {item.result_name}'
    subtitle = fmt.moment(item.started_at) + (f' · {item.operator_name}' if item.operator_name else '')
    color = RESULT_COLORS.get(item.result_code or '', 'primary')
    icon = CHANNEL_ICONS.get(item.channel, 'chat_bubble')
    details = []
    if item.phone:
        details.append(format_phone(item.phone))
    if item.duration_s:
        details.append(f'длительность {fmt.duration(item.duration_s)}')
    if item.promise_amount is not None:
        details.append(f'обещание {fmt.money(item.promise_amount)} до {fmt.day(item.promise_date)}')
    if item.callback_at is not None:
        details.append(f'перезвонить {fmt.moment(item.callback_at)}')
    if item.delivery_status:
        details.append('доставлено' if item.delivery_status == 'delivered' else 'не доставлено')
    lines = [
        f'<span class="crm-dot bg-{color}"><i class="q-icon notranslate material-icons">{icon}</i></span>',
        f'<div class="crm-title">{escape(title)}</div>',
        f'<div class="crm-subtitle">{escape(subtitle)}</div>',
    ]
    if details:
        lines.append(f'<div class="text-xs text-gray-600">{escape(" · ".join(details))}</div>')
    if item.comment:
        lines.append(f'<div class="text-sm">{escape(item.comment)}</div>')
    if item.body:
        lines.append(f'<div class="text-sm italic text-gray-700">{escape(item.body)}</div>')
    recording = web_url(item.recording_url)
    if recording is not None:
        url = escape(recording, quote=True)
        lines.append(f'<a class="text-xs" href="{url}" target="_blank" rel="noopener">Запись разговора</a>')
    return f'<li>{"".join(lines)}</li>'


TIMELINE_CSS = """
.crm-timeline { list-style: none; margin: 0; padding: 0; }
.crm-timeline > li { position: relative; padding: 0 0 12px 40px; }
.crm-timeline > li::before { content: ''; position: absolute; left: 13px; top: 28px; bottom: 0;
  border-left: 2px solid #e2e8f0; }
.crm-timeline > li:last-child::before { display: none; }
.crm-timeline .crm-dot { position: absolute; left: 0; top: 0; width: 28px; height: 28px; border-radius: 50%;
  color: white; display: flex; align-items: center; justify-content: center; font-size: 16px; }
.crm-timeline .crm-title { font-size: 0.95rem; font-weight: 600; line-height: 1.4; }
.crm-timeline .crm-subtitle { font-size: 0.75rem; color: #64748b; margin-bottom: 2px; }
.crm-timeline a { color: var(--q-primary); }
"""


def legal_status(card: v.BorrowerCard) -> None:
    if not card.legal_flags:
        return
    with (
        ui.row()
        .classes('w-full items-center gap-2 rounded bg-red-100 text-red-900 p-3')
        .props('data-testid=legal-status')
    ):
        ui.icon('gavel')
        ui.label('Правовой статус: ' + ', '.join(LEGAL_FLAG_LABELS[f] for f in card.legal_flags)).classes(
            'font-medium'
        )
        ui.label('— исходящие контакты запрещены').classes('text-sm')


FlagsSaver = Callable[[list[LegalFlag]], Awaitable[None]]


def legal_status_dialog(card: v.BorrowerCard, save: FlagsSaver) -> None:
    """Supervisors and admins set the legal status that forbids outgoing contact."""
    with ui.dialog() as dialog, ui.card().classes('w-[32rem]'):
        ui.label('Правовой статус заёмщика').classes('text-lg font-semibold')
        ui.label('Любая отметка запрещает исходящие звонки и сообщения (230-ФЗ).').classes('text-sm')
        boxes = {
            flag: ui.checkbox(label, value=flag in card.legal_flags)
            for flag, label in LEGAL_FLAG_LABELS.items()
        }

        async def apply() -> None:
            dialog.close()
            await save([flag for flag, box in boxes.items() if box.value])

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Сохранить', on_click=apply)
    dialog.open()


def render(
    card: v.BorrowerCard, verdict: Verdict | None, now: datetime, save_flags: FlagsSaver | None = None
) -> HistoryPanel:
    """The whole card; returns the history panel so a new contact can be shown in place."""
    heading(card)
    if save_flags is not None:
        with ui.row().classes('w-full justify-end -mt-2'):
            ui.button(
                'Правовой статус', icon='gavel', on_click=lambda: legal_status_dialog(card, save_flags)
            ).props('flat dense no-caps')
    legal_status(card)
    with ui.row().classes('w-full items-stretch gap-4'):
        personal(card, now)
        loan_terms(card)
    with ui.element('div').classes('w-full grid grid-cols-1 xl:grid-cols-5 gap-4 items-start'):
        with ui.element('div').classes('xl:col-span-2 min-w-0'):
            history = HistoryPanel(card)
        with ui.card().classes('xl:col-span-3 min-w-0'):
            with ui.tabs().props('align=left dense').classes('w-full') as tabs:
                loans_tab = ui.tab(f'Займы ({len(card.loans)})')
                credit_tab = ui.tab('Кредитная история')
                products_tab = ui.tab(f'Продукты ({len(card.products)})')
            with ui.tab_panels(tabs, value=loans_tab).classes('w-full') as panels:
                with ui.tab_panel(loans_tab).classes('p-0'):
                    loans_table(card)
                credit_panel = ui.tab_panel(credit_tab).classes('p-0')
                products_panel = ui.tab_panel(products_tab).classes('p-0')
            # hidden panels are drawn when first opened: a screen pop draws only what is seen
            lazy = {
                credit_tab.props['name']: (credit_panel, applications_table),
                products_tab.props['name']: (products_panel, products_list),
            }

            def open_panel(name: object) -> None:
                panel, draw = lazy.pop(str(name), (None, None))
                if panel is not None and draw is not None:
                    with panel:
                        draw(card)

            panels.on_value_change(lambda e: open_panel(e.value))
            tabs.on_value_change(lambda e: open_panel(e.value))
    return history


SearchFn = Callable[[str], Awaitable[v.SearchResult | str]]


def unknown_caller(number: str, search: SearchFn, on_pick: Callable[[int], Awaitable[None]]) -> None:
    """«Неизвестный номер»: the caller's number matched nobody; search in place, the number prefilled."""

    async def run_search() -> None:
        outcome = await search(box.value or '')
        results.clear()
        with results:
            if isinstance(outcome, str):
                ui.label(outcome).classes('text-warning')
            elif not outcome.items:
                ui.label('Никого не нашли — попробуйте ФИО, паспорт или PIN').classes('text-gray-600')
            else:
                for row in outcome.items:
                    with ui.row().classes('items-center gap-3'):
                        ui.button(row.full_name, on_click=lambda r=row: on_pick(r.id)).props(
                            'flat dense no-caps'
                        )
                        ui.label(f'PIN: {row.pin} · {row.city} · {day(row.birth_date)}').classes('text-sm')

    with ui.card().classes('w-full'):
        with ui.row().classes('items-center gap-3'):
            ui.icon('person_search', size='lg').classes('text-orange-700')
            with ui.column().classes('gap-0'):
                ui.label('Неизвестный номер').classes('text-xl font-semibold')
                ui.label(format_phone(number)).classes('text-lg')
        ui.label(
            'Номер не найден среди заёмщиков. Найдите звонящего по ФИО, паспорту или PIN '
            'и выберите его — звонок будет привязан к нему.'
        ).classes('text-sm text-gray-700')
        with ui.row().classes('items-center gap-2'):
            box = ui.input('Поиск заёмщика', value=digits(number) or number).props('outlined dense clearable')
            box.classes('w-96').on('keydown.enter', run_search)
            ui.button('Найти', icon='search', on_click=run_search).props('outline')
        results = ui.column().classes('gap-1')
