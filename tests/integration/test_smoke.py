from __future__ import annotations

from tests.conftest import make_staff, sign_in


def test_sign_in_page_renders(client):
    response = client.get("/sign-in")
    assert response.status_code == 200
    assert "Sign in" in response.get_data(as_text=True)


def test_staff_sign_in_reaches_home(client, deps, clock):
    account = make_staff(deps)
    sign_in(client, account, clock)
    page = client.get("/")
    assert page.status_code == 200
    assert "Welcome, Test Social Worker" in page.get_data(as_text=True)
