from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "storefront"
urlpatterns = [
    path("", views.product_list, name="products"),
    path("register/", views.register, name="register"),
    path("login/", auth_views.LoginView.as_view(template_name="storefront/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("cart/", views.cart_view, name="cart"),
    path("cart/add/<slug:slug>/", views.add_to_cart, name="add-to-cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<int:pk>/", views.order_view, name="order"),
]
