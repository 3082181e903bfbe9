from django.urls import path

from tests.django.shop import views

urlpatterns = [
    path("customers/<int:pk>", views.customer_detail),
    path("customers", views.customer_search),
]
