from django.urls import path

from . import views

urlpatterns = [
    path("tasks/<str:ref>/", views.dispatch, name="task"),
]
