from .cart import Cart


def cart(request):
    """The cart's item count for the shop's header (not the admin's pages)."""
    if request.path.startswith("/admin/") or not hasattr(request, "session"):
        return {}
    return {"cart_count": Cart(request.session).count}
