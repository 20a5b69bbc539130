"""The borrower card as markup: Jinja2 templates (autoescaped) rendered off the event loop.

Why markup and not NiceGUI elements: a screen pop must put the whole card on screen in tens of
milliseconds. Built from ~50 NiceGUI elements, the card cost ~12 ms of the event loop to build and
~30 ms of the browser to patch into a page that NiceGUI re-renders from the root for every update.
As markup it is three strings made in the thread that read the card (``render``) and three elements on
the page (``card_view.show``); the browser parses it in one go. Its styles are a static sheet
(``card.css``, in every page's head), so a card brings no new Tailwind classes for the browser to
compile while it is drawn. Every datum is escaped by the template engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from crm.domain import CHANNEL_LABELS, INBOUND_EMAIL_LABEL, overdue_bucket, status_label
from crm.domain import formatting as fmt
from crm.domain.contact_rules import LEGAL_FLAG_LABELS
from crm.domain.field_visibility import mask_birth_date
from crm.domain.identifiers import format_passport, format_phone, format_snils
from crm.domain.links import web_url
from crm.domain.messages import OUTBOX_STATUS_LABELS
from crm.domain.promises import PROMISE_STATUS_LABELS
from crm.services import views as v

TEMPLATES = Path(__file__).with_name('templates')
CARD_CSS = Path(__file__).with_name('card.css')

PHONE_KINDS = {'mobile': 'моб.', 'home': 'дом.', 'work': 'раб.'}
CHANNEL_ICONS = {
    'call_in': 'call_received',
    'call_out': 'call_made',
    'sms': 'sms',
    'email': 'mail',
    'chat': 'chat',
    'password': 'key',
    'note': 'edit_note',
    'visit': 'handshake',
    'letter': 'local_post_office',
    'call_other': 'phone_forwarded',
    'call_in_other': 'phone_callback',
    'payment': 'payments',
    'product': 'shopping_bag',
}
RESULT_COLORS = {'promise': 'positive', 'paid': 'positive', 'refusal': 'negative', 'wrong_number': 'negative'}
LOAN_HEADERS = [
    ('Займ №', 'l'),
    ('Продукт', 'l'),
    ('Статус', 'l'),
    ('Сумма', 'r'),
    ('Выдан', 'l'),
    ('Долг', 'r'),
    ('Просрочено', 'r'),
    ('Дней', 'r'),
]
APPLICATION_HEADERS = [
    ('Заявка №', 'l'),
    ('Дата', 'l'),
    ('Продукт', 'l'),
    ('Сумма', 'r'),
    ('Срок', 'l'),
    ('Статус', 'l'),
]
PRODUCT_HEADERS = [('Продукт', 'l'), ('Цена', 'r'), ('Куплен', 'l')]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(['html']),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters |= {
        'money': fmt.money,
        'phone': format_phone,
        'bucket': overdue_bucket,
        'status': lambda item: status_label(item.status_code, item.status_name),
    }
    env.globals['zip'] = zip
    return env


_ENV = _environment()


@dataclass(frozen=True)
class CardMarkup:
    """The three parts of a drawn card: head and data, history (redrawn alone), tabs."""

    top: str
    history: str
    tabs: str


def render(card: v.BorrowerCard, now: datetime) -> CardMarkup:
    """The whole card; safe to call from any thread."""
    return CardMarkup(
        top=_ENV.get_template('card_top.html').render(**_top(card, now)),
        history=history(card.communications, card.communications_total),
        tabs=_ENV.get_template('card_tabs.html').render(card=card, tabs=_tabs(card)),
    )


def product_slot(borrower_id: int) -> str:
    """The id of the place in the «Продукты» tab the offers and sales are drawn into (product_panel)."""
    return f'crm-products-{borrower_id}'


def bureau_slot(borrower_id: int) -> str:
    """The id of the place in the «Кредитная история» tab the bureau's part is drawn into, after the card."""
    return f'crm-bureau-{borrower_id}'


def history(items: tuple[v.CommunicationItem, ...], total: int) -> str:
    entries = [_entry(item) for item in items]
    return _ENV.get_template('card_history.html').render(entries=entries, total=total)


# The borrower's local time goes on in the browser: the server says what it was and when (its clock, which
# may differ from the browser's, e.g. under CRM_CLOCK_START); the browser adds what passed since it heard it.
# A phone chip dials: a click sends the phone's row id (never the number: it may be masked) to the tab's
# workspace (ui.on('crm-dial')); «Показать» asks the workspace to reveal a masked field (ui.on('crm-reveal')).
CARD_JS = """
<script>
setInterval(() => {
  for (const el of document.querySelectorAll('[data-local-clock]')) {
    if (!el.dataset.base) el.dataset.base = Date.now();
    const at = new Date(Number(el.dataset.nowMs) + Date.now() - Number(el.dataset.base));
    const hm = at.toLocaleTimeString('ru-RU', {timeZone: el.dataset.tz, hour: '2-digit', minute: '2-digit'});
    el.textContent = hm + el.dataset.suffix;
  }
}, 10000);
document.addEventListener('click', (event) => {
  const reveal = event.target.closest('[data-reveal]');
  if (reveal) {
    event.stopPropagation();
    emitEvent('crm-reveal', {field: reveal.dataset.reveal, phone: reveal.dataset.phone || null});
    return;
  }
  const chip = event.target.closest('[data-dial]');
  if (chip) emitEvent('crm-dial', chip.dataset.dial);
});
</script>
"""


def local_clock(timezone: str, now: datetime) -> Markup | str:
    """The borrower's wall clock, as markup the page's script keeps going (CARD_JS)."""
    shown = fmt.local_time(timezone, now)
    if ' ' not in shown:  # '—': a moment outside the zone's range
        return shown
    suffix = shown.split(' ', 1)[1]
    return Markup('<span data-local-clock data-tz="{}" data-now-ms="{}" data-suffix=" {}">{}</span>').format(
        timezone, int(now.timestamp() * 1000), suffix, shown
    )


def reveal_slot(borrower_id: int, field: str, phone_id: int | None = None) -> str:
    """The id of the element a revealed value replaces (a masked field, or one masked phone's label)."""
    return f'crm-reveal-{borrower_id}-{field}' + (f'-{phone_id}' if phone_id is not None else '')


def _personal(card: v.BorrowerCard, now: datetime) -> list[tuple[str, Any, str | None]]:
    """(label, value, the field a «Показать» reveals): hidden fields left out, masked ones named."""
    if card.birth_date is not None:
        born: str | None = fmt.day(card.birth_date)
    else:
        born = mask_birth_date(card.birth_year) if card.birth_year is not None else None
    masked = card.masked
    rows: list[tuple[str, Any, str]] = [
        ('Дата рождения', born, 'birth_date'),
        ('ИНН', card.inn, 'inn'),
        ('СНИЛС', format_snils(card.snils) if card.snils and 'snils' not in masked else card.snils, 'snils'),
        ('Паспорт', format_passport(card.passport) if card.passport else None, 'passport'),
        ('Кем выдан', card.passport_issued, 'passport_issued'),
        ('E-mail', card.email, 'email'),
        ('Адрес', card.address, 'address'),
        ('Город', card.city, ''),
        ('Местное время', local_clock(card.timezone, now), ''),
        ('Место работы', card.employer, 'employer'),
        ('Долг в месяц', fmt.money(card.monthly_payment), ''),
        ('Последний контакт', fmt.moment(card.last_contact_at), ''),
    ]
    return [
        (label, value, field if field in card.masked and value else None)
        for label, value, field in rows
        if field not in card.hidden
    ]


def _top(card: v.BorrowerCard, now: datetime) -> dict[str, Any]:
    loan = card.current_loan
    personal = _personal(card, now)
    terms = []
    if loan is not None:
        terms = [
            ('Сумма займа', fmt.money(loan.amount)),
            ('Срок', fmt.days(loan.term_days)),
            ('Ставка', f'{fmt.percent(loan.rate)} в день'),
            ('Продукт', loan.product),
            ('Дата выдачи', fmt.day(loan.issued_on)),
            ('Дата возврата', fmt.day(loan.due_on)),
            ('Остаток основного долга', fmt.money(loan.principal_outstanding)),
            ('Общая задолженность', fmt.money(loan.total_debt)),
        ]
    return {
        'card': card,
        'personal': personal,
        'terms': terms,
        'legal_flags': [LEGAL_FLAG_LABELS[flag] for flag in card.legal_flags],
        'broken_promise': _broken(card.broken_promise),
        'phone_kinds': PHONE_KINDS,
        'phones_masked': 'phones' in card.masked,
        'slot': reveal_slot,
        'active_loans': sum(1 for x in card.loans if x.state == 'active'),
    }


def _broken(promise: v.BrokenPromise | None) -> str | None:
    """The flag «Нарушено обещание» in the card's head: what was promised, and by when."""
    if promise is None:
        return None
    return f'{fmt.money(promise.amount)} до {fmt.day(promise.due_on)}'


@dataclass(frozen=True)
class _Tab:
    key: str
    title: str
    headers: list[tuple[str, str]]
    rows: list[list[str]]
    empty: str
    heading: str = ''
    slot: str = ''  # the id of an empty element after the table, for a part drawn later (bureau_panel)


def _tabs(card: v.BorrowerCard) -> list[_Tab]:
    loans = [
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
    applications = [
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
    products = [[p.name, fmt.money(p.price), fmt.moment(p.sold_at)] for p in card.products]
    return [
        _Tab('loans', f'Займы ({len(card.loans)})', LOAN_HEADERS, loans, 'Займов нет'),
        _Tab(
            'credit',
            'Кредитная история',
            APPLICATION_HEADERS,
            applications,
            'Заявок нет',
            heading='Заявки в компании',
            slot=bureau_slot(card.id),
        ),
        _Tab(
            'products',
            f'Продукты ({len(card.products)})',
            PRODUCT_HEADERS,
            products,
            'Дополнительные продукты не приобретались',
            slot=product_slot(card.id),
        ),
    ]


@dataclass(frozen=True)
class _Entry:
    title: str
    subtitle: str
    color: str
    icon: str
    details: list[str]
    comment: str | None
    body: str | None
    recording: str | None
    hidden: str | None = None  # «Скрыто от операторов …»: only administrators get hidden items


def _entry(item: v.CommunicationItem) -> _Entry:
    """One contact of the history as the timeline shows it."""
    if (item.channel, item.direction) == ('email', 'in'):
        title = INBOUND_EMAIL_LABEL
    else:
        title = CHANNEL_LABELS.get(item.channel, item.channel)
    if item.result_name:
        title += f' — {item.result_name}'
    details = [f'Тема: {item.subject}'] if item.subject else []
    if item.phone:
        details.append(format_phone(item.phone))
    if item.duration_s:
        details.append(f'длительность {fmt.duration(item.duration_s)}')
    if item.promise_amount is not None:
        details.append(f'обещание {fmt.money(item.promise_amount)} до {fmt.day(item.promise_date)}')
    if item.promise_status is not None:  # «Открыто», «Выполнено», «Нарушено» …
        details.append(PROMISE_STATUS_LABELS.get(item.promise_status, item.promise_status))
    if item.callback_at is not None:
        details.append(f'перезвонить {fmt.moment(item.callback_at)}')
    if item.delivery_status:
        details.append(OUTBOX_STATUS_LABELS.get(item.delivery_status, item.delivery_status))  # «В очереди» …
    return _Entry(
        title=title,
        subtitle=fmt.moment(item.started_at) + (f' · {item.operator_name}' if item.operator_name else ''),
        color=RESULT_COLORS.get(item.result_code or '', 'primary'),
        icon=CHANNEL_ICONS.get(item.channel, 'chat_bubble'),
        details=details,
        comment=item.comment,
        body=item.body,
        recording=web_url(item.recording_url),
        hidden=(
            f'Скрыто от операторов {fmt.moment(item.hidden_at)}: {item.hidden_reason or ""}'
            if item.hidden_at is not None
            else None
        ),
    )
