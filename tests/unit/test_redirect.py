import pytest

from crm.pages.session import safe_redirect


@pytest.mark.parametrize('target', ['/', '/borrower/5', '/search?q=%D0%B8%D0%B2&archive=1'])
def test_relative_paths_are_kept(target: str) -> None:
    assert safe_redirect(target) == target


@pytest.mark.parametrize(
    'target',
    ['https://evil.example/', '//evil.example', '/\\evil.example', 'javascript:alert(1)', '', None, '/\nx'],
)
def test_anything_else_goes_home(target: str | None) -> None:
    assert safe_redirect(target) == '/'
