"""Staff users for the browser tests, and logging in through the admin's own login page."""

from django.contrib.auth.models import Permission, User

PASSWORD = "the-Right-one-42"


def staff_user(username: str, *codenames: str) -> User:
    """A staff user (password ``PASSWORD``) with exactly the permissions named by ``codenames``."""
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    permissions = Permission.objects.filter(codename__in=codenames)
    assert permissions.count() == len(codenames), f"unknown permission among {codenames}"
    user.user_permissions.add(*permissions)
    return user


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Fill in and submit the admin's login form, as a person would."""
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
