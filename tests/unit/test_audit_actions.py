"""Every action the code audits has a Russian label in crm.domain.audit_actions, and the origin of an act
reaches the worker thread a page's service call runs in."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from crm.domain.audit_actions import ACTION_LABELS, action_choices, action_label, actions_of, details_text
from crm.domain.origin import acting_from, current_address
from crm.pages.off_loop import service

ROOT = Path(__file__).resolve().parents[2]

# audit.record calls whose action is computed: the expression as written → every action it gives.
COMPUTED: dict[str, tuple[str, ...]] = {
    "command.replace('telephony.', 'call.')": ('call.hold', 'call.resume', 'call.transfer', 'call.hangup'),
    "f'mailing.{action}'": ('mailing.pause', 'mailing.resume', 'mailing.cancel'),
    'action': ('message.sms', 'message.email', 'message.password'),  # crm/services/messaging.py
    "f'operator.{event.value}'": ('operator.force_break', 'operator.force_logout'),  # supervisors' only
}


def audited_actions() -> tuple[set[str], list[str]]:
    """The actions of every ``audit.record(session, <action>, …)`` in crm/, and the expressions not known."""
    found: set[str] = set()
    unknown: list[str] = []
    for path in sorted((ROOT / 'crm').rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != 'record' or not isinstance(node.func.value, ast.Name):
                continue
            if node.func.value.id != 'audit' or len(node.args) < 2:
                continue
            found |= set(_values(node.args[1], path, unknown))
    return found, unknown


def _values(node: ast.expr, path: Path, unknown: list[str]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _values(node.body, path, unknown) + _values(node.orelse, path, unknown)
    text = ast.unparse(node)
    if text in COMPUTED:
        return list(COMPUTED[text])
    unknown.append(f'{path.relative_to(ROOT)}:{node.lineno}: {text}')
    return []


def test_every_audited_action_has_a_label() -> None:
    found, unknown = audited_actions()
    assert not unknown, f'computed actions: list what they give in COMPUTED: {unknown}'
    assert {'card.view', 'login', 'bureau.request', 'audit.export', 'call.hold'} <= found  # the scan works
    assert sorted(found - set(ACTION_LABELS)) == []


def test_the_computed_actions_are_still_there() -> None:
    calls = (ROOT / 'crm/services/calls.py').read_text()
    assert all(
        f"'telephony.{a.split('.')[1]}'" in calls for a in COMPUTED["command.replace('telephony.', 'call.')"]
    )
    messaging = (ROOT / 'crm/services/messaging.py').read_text()
    assert "'message.password' if message.secret else f'message.{message.channel.value}'" in messaging


def test_groups_and_unknown_actions() -> None:
    assert actions_of('login') == ('login', 'login.failed', 'login.locked', 'login.lockout')
    assert actions_of('card.view') == ('card.view',) and actions_of('no.such') == ('no.such',)
    assert action_label('card.view') == 'Просмотр карточки'
    assert action_label('call.park') == 'Звонки: call.park' and action_label('x.y') == 'x.y'
    assert next(iter(action_choices())) == 'login' and action_choices()['card.view'] == 'Просмотр карточки'
    assert (
        details_text({'login': 'ivanov', 'cut': False, 'other': None})
        == 'логин: ivanov; обрезано: нет; other: —'
    )


def test_the_address_reaches_the_thread_a_page_calls_a_service_in() -> None:
    async def main() -> tuple[str | None, str | None]:
        with acting_from('192.0.2.1'):
            inside = await service(current_address)
        return inside, await service(current_address)

    assert asyncio.run(main()) == ('192.0.2.1', None)
    with acting_from('x' * 100):
        assert current_address() == 'x' * 64  # the column's width


def test_only_the_forced_operator_events_are_audited_that_way() -> None:
    states = (ROOT / 'crm/services/operator_states.py').read_text()
    forced = sorted(
        line.split('OperatorEvent.')[1].split(',')[0]
        for line in states.splitlines()
        if 'self._forced(' in line
    )
    assert forced == ['FORCE_BREAK', 'FORCE_LOGOUT']
