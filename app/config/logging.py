"""Logging helpers shared by web, worker and beat."""

import logging

from celery import current_task


class TaskContextFilter(logging.Filter):
    """Add task_id and task_name to records logged while a task runs."""

    def filter(self, record):
        task = current_task
        if task and task.request and task.request.id:
            record.task_id = task.request.id
            record.task_name = task.name
        return True
