"""The admin of coupon pools and the coupons they hand out."""

from django.contrib import admin

from customers.admin import ReadOnlyAdmin

from .models import Coupon, CouponPool


@admin.register(CouponPool)
class CouponPoolAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "percent_off", "amount_off")


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "pool", "customer", "enrollment", "percent_off", "amount_off", "issued_at")
    search_fields = ("code", "customer__email")
    list_filter = ("pool",)
