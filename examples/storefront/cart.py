"""The cart lives in the session: {product id: quantity}."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from .models import Product

SESSION_KEY = "cart"


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    def __init__(self, session):
        self.session = session
        self.data = session.setdefault(SESSION_KEY, {"id": uuid.uuid4().hex, "items": {}})

    @property
    def id(self) -> str:
        return self.data["id"]

    def set(self, product_id: int, quantity: int) -> None:
        if quantity > 0:
            self.data["items"][str(product_id)] = quantity
        else:
            self.data["items"].pop(str(product_id), None)
        self.session.modified = True

    def add(self, product_id: int, quantity: int = 1) -> None:
        self.set(product_id, self.data["items"].get(str(product_id), 0) + quantity)

    def lines(self) -> list[CartLine]:
        products = Product.objects.in_bulk([int(pk) for pk in self.data["items"]])
        return [
            CartLine(products[int(pk)], quantity) for pk, quantity in self.data["items"].items() if int(pk) in products
        ]

    @property
    def count(self) -> int:
        return sum(self.data["items"].values())

    def total(self) -> Decimal:
        return sum((line.subtotal for line in self.lines()), Decimal("0"))

    def as_event_items(self) -> list[dict]:
        return [
            {
                "sku": line.product.slug,
                "name": line.product.name,
                "quantity": line.quantity,
                "price": str(line.product.price),
            }
            for line in self.lines()
        ]

    def clear(self) -> None:
        self.session[SESSION_KEY] = {"id": uuid.uuid4().hex, "items": {}}
