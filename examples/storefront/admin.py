from django.contrib import admin

from .models import Order, OrderLine, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "price", "currency")
    prepopulated_fields = {"slug": ("name",)}


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("pk", "customer", "total", "currency", "placed_at")
    inlines = [OrderLineInline]
    raw_id_fields = ("customer",)
