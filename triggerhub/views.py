from django.db import DatabaseError, connection
from django.http import HttpResponse


def healthz(request):
    """For load balancers and compose healthchecks: 200 when the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return HttpResponse(f"database unavailable: {exc}", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
