"""Reading the builder's page as a browser would post it, for the admin tests."""

from html.parser import HTMLParser

from django.urls import reverse


class _FormFields(HTMLParser):
    """The (name, value) pairs a browser would post from the page's main form, in page order."""

    def __init__(self):
        super().__init__()
        self.pairs, self._textarea, self._select, self._chosen = [], None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.pairs.append([name, attrs.get("value", "on" if attrs.get("type") == "checkbox" else "")])
        elif tag == "textarea" and name:
            self._textarea = [name, ""]
            self.pairs.append(self._textarea)
        elif tag == "select" and name:
            self._select, self._multiple, self._chosen, self._first = name, "multiple" in attrs, [], None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = attrs.get("value", "")
            if "selected" in attrs:
                self._chosen.append(attrs.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            chosen = self._chosen or ([] if self._multiple else [self._first or ""])
            self.pairs.extend([self._select, value] for value in chosen)
            self._select = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data


def posted(response) -> dict:
    """The page's form as the test client posts it: {name: [values]}."""
    parser = _FormFields()
    parser.feed(response.content.decode())
    data = {}
    for name, value in parser.pairs:
        if name != "csrfmiddlewaretoken":
            data.setdefault(name, []).append(value.removeprefix("\n"))
    return data


def change_url(activity):
    return reverse("admin:activities_activity_change", args=[activity.pk])


ADD_URL = "/admin/activities/activity/add/"
