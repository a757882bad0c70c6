"""The example shop. Each view that changes something tells TriggerHub with a signal,
inside the same transaction, so the event exists exactly when the change does."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from customers import consent
from customers.models import Channel, ConsentSource, Customer
from customers.signals import cart_updated, customer_registered, order_placed

from .cart import Cart
from .forms import RegistrationForm
from .models import Order, OrderLine, Product


def product_list(request):
    return render(request, "storefront/products.html", {"products": Product.objects.all()})


def register(request):
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            customer = Customer.objects.create(
                user=user,
                external_id=f"user:{user.pk}",
                email=form.cleaned_data["email"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                country=form.cleaned_data["country"],
            )
            if form.cleaned_data["email_offers"]:
                consent.grant(
                    customer,
                    Channel.EMAIL,
                    ConsentSource.FORM,
                    evidence="registration form: 'E-mail me offers and reminders' ticked",
                    ip_address=request.META.get("REMOTE_ADDR"),
                    user_agent=request.META.get("HTTP_USER_AGENT", ""),
                )
            # The key makes a double-submitted form one registration event.
            customer_registered.send(sender=register, customer=customer, idempotency_key=f"registration:{user.pk}")
        # Named because there are two backends (axes' throttle first); this user just signed up.
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {customer.first_name}! Your account is ready.")
        return redirect("storefront:products")
    return render(request, "storefront/register.html", {"form": form})


def _customer_of(request):
    if request.user.is_authenticated:
        return Customer.objects.filter(user=request.user).first()
    return None


def _tell_cart_updated(request, cart):
    # Anonymous visitors are nobody TriggerHub can write to; only known customers count.
    customer = _customer_of(request)
    if customer is not None:
        cart_updated.send(
            sender=cart_view,
            customer=customer,
            cart_id=cart.id,
            items=cart.as_event_items(),
            total=str(cart.total()),
        )


@require_POST
def add_to_cart(request, slug):
    product = get_object_or_404(Product, slug=slug)
    cart = Cart(request.session)
    cart.add(product.pk)
    _tell_cart_updated(request, cart)
    messages.success(request, f"{product.name} is in your cart.")
    return redirect("storefront:products")


def cart_view(request):
    cart = Cart(request.session)
    if request.method == "POST":
        for line in cart.lines():
            raw = request.POST.get(f"quantity-{line.product.pk}", str(line.quantity))
            try:
                quantity = max(0, int(raw))
            except ValueError:
                messages.error(request, f"'{raw}' is not a quantity for {line.product.name}.")
                return redirect("storefront:cart")
            cart.set(line.product.pk, quantity)
        _tell_cart_updated(request, cart)
        return redirect("storefront:cart")
    return render(request, "storefront/cart.html", {"lines": cart.lines(), "total": cart.total()})


@login_required
@require_POST
def checkout(request):
    cart = Cart(request.session)
    lines = cart.lines()
    if not lines:
        messages.error(request, "Your cart is empty.")
        return redirect("storefront:cart")
    customer = _customer_of(request)
    if customer is None:
        messages.error(request, "This account has no customer profile; register a shop account first.")
        return redirect("storefront:cart")
    with transaction.atomic():
        order = Order.objects.create(customer=customer, total=cart.total(), currency=lines[0].product.currency)
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product=line.product, quantity=line.quantity, unit_price=line.product.price)
            for line in lines
        )
        order_placed.send(
            sender=checkout,
            customer=customer,
            order_id=str(order.pk),
            total=str(order.total),
            currency=order.currency,
            items=cart.as_event_items(),
            idempotency_key=f"order:{order.pk}",
        )
    cart.clear()
    return redirect("storefront:order", pk=order.pk)


@login_required
def order_view(request, pk):
    order = get_object_or_404(Order, pk=pk, customer__user=request.user)
    return render(request, "storefront/order.html", {"order": order})
