"""The monitor page: every instance of a task hub in the browser, built only on the Durable HTTP API.

``handler`` serves the static page from ``static/`` at ``/runtime/monitor/``; the page itself talks to
``/runtime/webhooks/durabletask/`` (or to another app's, given its base URL and system key).
"""
