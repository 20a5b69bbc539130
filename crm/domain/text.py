"""Russian wording helpers usable from any layer."""


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian noun form for n: plural(5, 'минуту', 'минуты', 'минут') -> 'минут'."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many
