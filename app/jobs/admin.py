from django.contrib import admin

from .models import DeadLetter, Heartbeat, SideEffect


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("created_at", "task_name", "task_id", "queue", "retries", "exception")
    list_filter = ("task_name", "queue")
    search_fields = ("task_id", "task_name", "exception")
    readonly_fields = [field.name for field in DeadLetter._meta.fields]


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("created_at", "worker")


@admin.register(SideEffect)
class SideEffectAdmin(admin.ModelAdmin):
    list_display = ("created_at", "key", "task_id")
    search_fields = ("key", "task_id")
