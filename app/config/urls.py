from django.contrib import admin
from django.urls import include, path
from jobs import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("jobs.urls")),
    path("admin/", admin.site.urls),
]
