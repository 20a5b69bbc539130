"""The audit log's actions and their Russian labels («Журнал действий»).

Every action ``crm.services.audit.record`` is called with has a label here (a test collects them from the
source). An action nobody labelled yet is shown by its group's label and its code, never hidden.
"""

from __future__ import annotations

ACTION_LABELS: dict[str, str] = {
    'login': 'Вход',
    'login.failed': 'Неудачный вход',
    'login.locked': 'Вход при блокировке',
    'login.lockout': 'Блокировка входа',
    'logout': 'Выход',
    'card.view': 'Просмотр карточки',
    'borrower.legal_status': 'Правовой статус',
    'bureau.request': 'Запрос в БКИ',
    'bureau.consent': 'Согласие на запрос в БКИ',
    'call.dial': 'Исходящий звонок',
    'call.refused': 'Звонок запрещён (230-ФЗ)',
    'call.hold': 'Звонок на удержании',
    'call.resume': 'Звонок снят с удержания',
    'call.transfer': 'Перевод звонка',
    'call.hangup': 'Завершение звонка',
    'call.link': 'Привязка звонка к заёмщику',
    'call.result': 'Результат звонка',
    'contact.record': 'Запись о контакте',
    'chat.view': 'Просмотр чата',
    'chat.reply': 'Ответ в чате',
    'chat.link': 'Привязка чата к заёмщику',
    'message.sms': 'Отправка SMS',
    'message.email': 'Отправка e-mail',
    'message.password': 'Пароль от личного кабинета',
    'mailing.create': 'Создание рассылки',
    'mailing.pause': 'Рассылка приостановлена',
    'mailing.resume': 'Рассылка возобновлена',
    'mailing.cancel': 'Рассылка отменена',
    'mailing.export': 'Экспорт отчёта рассылки',
    'outbox.view': 'Просмотр исходящего сообщения',
    'outbox.resend': 'Повторная отправка сообщения',
    'template.save': 'Сохранение шаблона',
    'template.preview': 'Предпросмотр шаблона',
    'template.retire': 'Шаблон в архив',
    'template.restore': 'Шаблон из архива',
    'product.save': 'Сохранение продукта',
    'product.active': 'Продукт включён / выключен',
    'product.sale': 'Продажа продукта',
    'requests.export': 'Экспорт обращений',
    'result_code.save': 'Результат звонка (справочник)',
    'api_token.create': 'Создание API-токена',
    'api_token.revoke': 'Отзыв API-токена',
    'audit.export': 'Экспорт журнала действий',
    'user.create': 'Создание пользователя',
    'user.edit': 'Изменение пользователя',
    'user.block': 'Блокировка пользователя',
    'user.unblock': 'Разблокировка пользователя',
    'user.unlock': 'Снятие блокировки входа',
    'user.password.reset': 'Сброс пароля',
    'user.password.change': 'Смена пароля',
    'group.create': 'Создание группы',
    'group.rename': 'Переименование группы',
    'group.supervisor': 'Руководитель группы',
    'operator.force_break': 'Перерыв по решению руководителя',
    'operator.force_logout': 'Выход по решению руководителя',
    'operator.day.view': 'Просмотр контактов оператора за день',
    'dashboard.thresholds.save': 'Пороги мониторинга изменены',
    'dashboard.thresholds.reset': 'Пороги мониторинга по умолчанию',
    'portfolio.assign': 'Назначение заёмщиков оператору',
    'portfolio.distribute': 'Распределение портфеля',
    'portfolio.hand_over': 'Передача портфеля',
    'communication.hide': 'Запись скрыта от операторов',
    'communication.show': 'Запись показана снова',
    'borrower.erase': 'Удаление персональных данных',
    'field.reveal': 'Показ скрытого поля',
    'field.visibility': 'Видимость полей',
}

# The groups an action filter may name (all of a group's actions): «login» is every kind of login.
GROUP_LABELS: dict[str, str] = {
    'login': 'Входы (все)',
    'call': 'Звонки (все)',
    'chat': 'Чаты (все)',
    'message': 'Сообщения (все)',
    'mailing': 'Рассылки (все)',
    'bureau': 'БКИ (все)',
    'template': 'Шаблоны (все)',
    'product': 'Продукты (все)',
    'api_token': 'API-токены (все)',
    'user': 'Пользователи (все)',
    'group': 'Группы (все)',
    'operator': 'Состояния операторов (все)',
    'portfolio': 'Портфель (все)',
    'field': 'Видимость полей (все)',
    'dashboard': 'Пороги мониторинга (все)',
}


def action_label(action: str) -> str:
    """The Russian label, or for an action not labelled yet its group's label with the code."""
    known = ACTION_LABELS.get(action)
    if known is not None:
        return known
    group = GROUP_LABELS.get(action.split('.', 1)[0])
    return f'{group.split(" (")[0]}: {action}' if group else action


def actions_of(choice: str) -> tuple[str, ...]:
    """What a filter's choice means: one known action, or a group prefix — the group and its sub-actions
    (``login`` → ``login``, ``login.failed`` …). Unknown choices stand for themselves."""
    members = tuple(a for a in ACTION_LABELS if a == choice or a.startswith(choice + '.'))
    return members if members else (choice,)


def action_choices() -> dict[str, str]:
    """The filter's options: the groups first, then every action by label."""
    groups = {prefix: label for prefix, label in GROUP_LABELS.items()}
    actions = dict(sorted(ACTION_LABELS.items(), key=lambda item: item[1]))
    return groups | {code: label for code, label in actions.items() if code not in groups}


DETAIL_LABELS: dict[str, str] = {
    'login': 'логин',
    'minutes': 'минут',
    'rows': 'строк',
    'cut': 'обрезано',
    'call_id': 'звонок',
    'chat_id': 'чат',
    'mailing_id': 'рассылка',
    'token_id': 'токен',
    'template_id': 'шаблон',
    'outbox_id': 'сообщение',
    'message_id': 'сообщение',
    'to_extension': 'на номер',
    'name': 'название',
    'code': 'код',
    'active': 'активен',
    'status': 'статус',
    'filters': 'фильтры',
    'operator_id': 'оператор',
    'reason': 'причина',
    'state': 'состояние',
    'before': 'было',
    'after': 'стало',
}


def details_text(details: dict[str, object]) -> str:
    """An entry's details as a line: «логин: ivanov; минут: 15» (known keys in Russian, yes/no for flags)."""
    parts = []
    for key, value in details.items():
        shown = ('да' if value else 'нет') if isinstance(value, bool) else '—' if value is None else value
        parts.append(f'{DETAIL_LABELS.get(key, key)}: {shown}')
    return '; '.join(parts)
