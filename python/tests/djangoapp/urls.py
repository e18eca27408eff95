"""URLs of the test project."""

from django.urls import path

from . import views

urlpatterns = [
    path("start", views.start),
    path("incr", views.incr),
    path("value", views.value),
    path("count-view", views.count_view),
    path("search", views.search),
    path("fail", views.fail),
    path("held", views.held),
    path("login", views.login),
    path("logout", views.logout),
]
